"""What moving pictures need of the masker (:class:`core.api.FaceMasker` is one).

Typed here so that the tracker and the video path say what they use, and a test can hand
them a small double instead of the whole model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from core.detection.boxes import FaceBox
from core.render.style import Style
from core.render.warp import MaskPicture
from core.results import Face, Mode


class PointReader(Protocol):
    def look(
        self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 68, 2) image points and (N,) heatmap spreads of N face boxes of one image."""
        ...


class VideoMasker(Protocol):
    """The photo path the video path builds on: find faces, read points, draw a mask."""

    @property
    def predictor(self) -> PointReader: ...

    @property
    def max_shape_error(self) -> float | None:
        """Above this shape error points are not a face (None: keep them all)."""
        ...

    def find_faces(self, rgb: np.ndarray, mode: Mode | str = Mode.FACES) -> list[Face]:
        """Every face's box and 68 points in an RGB frame (Mode.WHOLE: the frame is one)."""
        ...

    def picture(self, mask_id: int, style: Style | str | None = None) -> MaskPicture:
        """The mask's picture, in ``style`` where one is given (an unknown ``mask_id``
        raises UnknownMaskError, an unknown style UnknownStyleError)."""
        ...
