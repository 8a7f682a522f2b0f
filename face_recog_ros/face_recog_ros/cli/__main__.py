"""`python -m face_recog_ros.cli ...` is `face-recog ...`."""
import sys

from .app import main

sys.exit(main())
