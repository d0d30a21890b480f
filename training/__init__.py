"""Training the keypoint network (torch; the ``train`` extra)."""

import os

# torch's OpenMP threads busy-wait after each parallel region for GOMP_SPINCOUNT spins
# (libgomp reads it when torch loads); at libgomp's default they held both cores after a
# torch call just when ONNX Runtime's sessions wanted them (training's validation and the
# lab run both side by side; docs/experiments/detection-and-speed.md). An explicit
# GOMP_SPINCOUNT in the environment wins.
os.environ.setdefault("GOMP_SPINCOUNT", "30000")
