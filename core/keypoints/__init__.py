"""Stage 2, keypoints: 68 points for each face box.

The 68-point scheme (``face68``), the one crop/preprocess pair shared with training
(``preprocess``), and the keypoint network on ONNX Runtime with its doubt rules
(``landmarks``). Keypoints may import detection, never render or video.
"""
