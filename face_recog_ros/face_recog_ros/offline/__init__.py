"""Tools for recorded media and photo folders: labelling, screen time, look-alikes, group photos,
clustering, embedding maps, and the accuracy, alignment-fidelity and speed benchmarks."""
