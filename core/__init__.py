"""The inference core: face detection, keypoints on ONNX Runtime, the mask's warp.

Importing it changes nothing global: ONNX Runtime's telemetry is switched off where it is
first imported (:func:`core.runtime.ort`).
"""
