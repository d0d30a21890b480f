"""The inference core: face detection, keypoints on ONNX Runtime, the mask's warp."""

import os

# torch's OpenMP threads busy-wait after each parallel region for GOMP_SPINCOUNT spins
# (libgomp reads it when torch loads). At libgomp's default, 300000, they held both cores
# for more than 5 ms after MTCNN or the seed's network, just when the keypoint network's
# ONNX Runtime sessions (one per ensemble member, side by side) want them: 11.7 ms a face
# after a torch call against 5.9 alone. At 30000 it was 6.3 ms, and torch's own networks
# lost nothing (seed 20.4 ms, MTCNN 23 ms a photo; measured with facemask-speed and
# facemask-bench on 2 cores). An explicit GOMP_SPINCOUNT in the environment wins.
os.environ.setdefault("GOMP_SPINCOUNT", "30000")

# ONNX Runtime's telemetry: importing it writes a device id and an event store under
# ~/.cache/Microsoft/DeveloperTools unless this is set first (checked with a fresh HOME,
# tests/core/test_onnx_serving.py). Set here, before any module of ours can import it;
# core.runtime.ort() also switches its telemetry events off.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
