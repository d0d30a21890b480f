"""Stage 1, detection: where the faces are, as face boxes the keypoint model can crop.

One protocol and result (``base``), the face box geometry (``boxes``), one file per
detector, each owning its box convention (``haar``, ``mtcnn``, ``centerface``; their
combination in ``combined``), the detectors by name (``registry``) and the product's
turned search (``turns``). Detection imports no later stage.
"""
