"""ament_python package definition; also what pip uses outside colcon.

With ROS (colcon), the run-time libraries come from rosdep (package.xml). Without ROS:
    pip install "./face_recog_ros[standalone]"   # the library and the face-recog CLI
    pip install "./face_recog_ros[all]"          # + demo photos, charts, bags, progress bars
The extras are not pulled by default because pip's numpy and OpenCV would shadow the apt ones
that ROS's own packages (cv_bridge) are built against. Both lists come from
face_recog_ros/dependencies.py.
"""
import os
import runpy

from setuptools import find_packages, setup

package_name = 'face_recog_ros'
# Read by path: importing the package would need the very libraries being declared.
pip_extras = runpy.run_path(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), package_name, 'dependencies.py'),
)['pip_extras']


def share_tree(folder: str) -> list[tuple[str, list[str]]]:
    """Install every file under `folder` to share/<package>/<folder>/..., keeping sub-folders."""
    entries = []
    for dirpath, _, filenames in os.walk(folder):
        files = sorted(os.path.join(dirpath, f) for f in filenames if not f.startswith('.'))
        if files:
            entries.append((os.path.join('share', package_name, dirpath), files))
    return entries


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        *share_tree('launch'),
        *share_tree('config'),
        *share_tree('models'),
    ],
    # Nothing by default (see the docstring); colcon's console scripts would also check these
    # names against installed distributions, which apt's python3-opencv does not register.
    install_requires=[],
    extras_require=pip_extras(),
    zip_safe=False,
    maintainer='face_recog_ros contributors',
    maintainer_email='maintainers@face-recog-ros.invalid',
    description='Real-time face detection, tracking and recognition for ROS 2 robots (TFLite, '
                'CPU).',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'face-recog = face_recog_ros.cli:main',
            'face_recognition_node = face_recog_ros.ros.node:main',
            'camera_publisher = face_recog_ros.ros.camera_publisher:main',
            'face_recog_demo = face_recog_ros.ros.demo:main',
        ]
    },
)
