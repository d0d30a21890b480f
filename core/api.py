"""The front door: one object that loads the model once and masks photos.

>>> masker = FaceMasker()
>>> result = masker.apply(Path("group.jpg").read_bytes(), mask_id=1)   # every face
>>> Path("masked.jpg").write_bytes(result.image)
>>> masker.landmarks("portrait.png", mode=Mode.WHOLE)                   # whole image = one face

Everything happens at the input's full resolution; the output has the input's size and
format family (:mod:`core.imageio`). Failures a user can cause are :mod:`core.errors`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from PIL import Image

from core import imageio, threads
from core.batch import FileResult, MaskPlan, Options, mask_file, mask_plan
from core.detection.base import FaceDetector
from core.detection.boxes import centre_in_either
from core.detection.registry import default_detector
from core.detection.turns import detect_with_turns
from core.errors import NoFaceFoundError, UnknownMaskError
from core.keypoints.plausibility import (
    FaceGate,
    Readings,
    evidence,
    outer_eye_distance,
    readings,
)
from core.keypoints.verifier import FaceVerifier, in_focus, shipped_verifier
from core.render import cover, warp
from core.render.picture import load_picture
from core.render.sticker import cut_out
from core.render.style import Style
from core.results import Face, MaskedPhoto, MaskedVideo, Mode
from core.video import codec, masking
from core.video import sticker as video_sticker
from masks import catalog

if TYPE_CHECKING:
    from core.keypoints.landmarks import KeypointPredictor

log = logging.getLogger(__name__)

ImageInput = imageio.ImageInput


__all__ = ["Face", "FaceMasker", "Masker", "MaskedPhoto", "Mode", "default_masker", "face_mask"]


#: styled mask pictures a masker keeps (about 17 MB each), the least recently used dropped
KEEP_STYLED = 8
#: a mask id, or a mix: one mask id per face, faces taken left to right (``masks.mix``)
MaskChoice = int | Sequence[int]
#: a style (``core.render.style``), its id ("navy", "#0473e2", "stripes"), or None for none
StyleChoice = Style | str | None

# Above this ``warp.shape_error`` a detection's points are not a face. Chosen on 100 group
# photos (facemask-detector-bench --masked): with MTCNN, 0.12 keeps every face with eyes
# >= 20 px apart (0.09 dropped 3% of them, turned heads, and no false box); with the Haar
# cascade it halves the false boxes that reach the warp (0.16 -> 0.10 a photo).
MAX_SHAPE_ERROR = 0.12


class Masker(Protocol):
    """What a worker needs of a masker (``serving.pool``): :class:`FaceMasker` is one, and a
    test may hand in a small double. The video path needs less
    (:class:`core.video.masker.VideoMasker`)."""

    def apply(
        self,
        image: ImageInput,
        mask_id: MaskChoice,
        mode: Mode | str = ...,
        style: StyleChoice = ...,
    ) -> MaskedPhoto: ...

    def apply_many(
        self,
        image: ImageInput,
        mask_ids: list[int] | tuple[int, ...],
        mode: Mode | str = ...,
        style: StyleChoice = ...,
    ) -> list[MaskedPhoto]: ...

    def sticker(
        self,
        image: ImageInput,
        mode: Mode | str = ...,
        mask_id: MaskChoice | None = ...,
        style: StyleChoice = ...,
    ) -> bytes: ...

    def apply_video(
        self,
        source: codec.VideoInput,
        mask_id: int,
        mode: Mode | str = ...,
        *,
        kind: str = ...,
        progress: Callable[[float], None] | None = ...,
        cancel: threading.Event | None = ...,
        max_duration_s: float = ...,
        style: StyleChoice = ...,
    ) -> MaskedVideo: ...

    def video_sticker(
        self,
        source: codec.VideoInput,
        mask_id: int | None,
        mode: Mode | str = ...,
        *,
        progress: Callable[[float], None] | None = ...,
        cancel: threading.Event | None = ...,
    ) -> MaskedVideo: ...


def read_faces(predictor: KeypointPredictor, rgb: np.ndarray, boxes: list) -> Readings:
    """The keypoint model's readings of detected faces as the product takes them: a face
    the model doubts and whose lower face is covered (:func:`takes_more_looks`, on its
    first look's points) takes more looks in crops built from its points, since a worn
    mask, a hand or a cup misleads the detector's box; a bare face keeps its one look (a
    second one gained it nothing and read blurred faces worse: docs/experiments/
    keypoint-model.md, "A second look where the model doubts")."""
    return readings(predictor, rgb, boxes, picked=lambda points: takes_more_looks(rgb, points))


def takes_more_looks(rgb: np.ndarray, points: np.ndarray) -> bool:
    """Whether a doubted face on ``points`` is looked at again: it wears a mask
    (``core.render.cover.wears_mask``), or something else covers its mouth and chin and
    the face is in focus (a blurred face read again reads worse, and its lips and chin
    smear into skin and shadow: docs/experiments/keypoint-model.md, "Something over the
    mouth, in focus")."""
    mask, mouth = cover.covered(rgb, points)
    return mask or (mouth and in_focus(rgb, points))


def same_points(a: np.ndarray, b: np.ndarray) -> bool:
    """Two readings of one face: either's points' centre lies in the other's point box."""

    def box(points: np.ndarray) -> tuple[float, ...]:
        return (*points.min(axis=0), *points.max(axis=0))

    return centre_in_either(box(a), box(b))


def one_reading_each(faces: list[Face], doubts: list[float]) -> list[Face]:
    """``faces`` (in their order) less those that read a face a surer reading (a lower
    heatmap spread, ``doubts``) already reads (:func:`one_of_each`)."""
    return [faces[i] for i in one_of_each([extent(f.points) for f in faces], doubts)]


def one_of_each(extents: Sequence[Sequence[float]], doubts: Sequence[float]) -> list[int]:
    """Which readings to keep (indices, in order): each one that no surer reading of the
    same face (:func:`same_face`) comes before, surer meaning the keypoint model's lower
    doubt (its heatmap spread; NaN last): one model judges every reading, whichever detector
    found it. Two detections of one face can survive the search (an upright one not sure
    enough, the same face found turned; two boxes on a masked face), and each would get a
    mask."""

    def doubt(i: int) -> tuple[bool, float]:
        d = float(doubts[i])
        return (bool(np.isnan(d)), d if not np.isnan(d) else 0.0)

    kept: list[int] = []
    for i in sorted(range(len(extents)), key=doubt):
        if not any(same_face(extents[i], extents[k]) for k in kept):
            kept.append(i)
    return sorted(kept)


# Two readings are of one face only where their eyes are no more than this many times
# further apart: a small face in front of a big one (a child held up to a cheek) is another.
SAME_SIZE = 1.5


def extent(points: np.ndarray) -> tuple[float, float, float, float, float]:
    """A reading's point box (x0, y0, x1, y1) and its outer eye corners' distance."""
    p = np.asarray(points, np.float64)
    return (*map(float, p.min(axis=0)), *map(float, p.max(axis=0)), outer_eye_distance(p))


def same_face(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two readings (:func:`extent`) of one face: either's centre in the other's point box
    (:func:`same_points`), at about the same size (``SAME_SIZE``)."""
    similar = max(a[4], b[4]) <= SAME_SIZE * max(min(a[4], b[4]), 1e-6)
    return similar and centre_in_either(tuple(a[:4]), tuple(b[:4]))


class FaceMasker:
    """Detector + keypoint model + the seven masks, loaded once, used for many photos.

    ``predictor`` and ``detector`` default to the shipped keypoint weights and MTCNN;
    pass your own (anything with the same methods) to swap either. With
    Mode.FACES, a detection whose 68 points are not face-shaped (``warp.shape_error`` above
    ``max_shape_error``) is taken for a false positive and left alone; None keeps them all.
    Then ``gate`` (:class:`core.keypoints.plausibility.FaceGate`) looks at what is known
    of each face left and drops those that are not faces (fur, toys, hair); None keeps them.
    Among what it looks at is ``verifier``'s probability that the points outline a face
    (:mod:`core.keypoints.verifier`; "shipped": the shipped network where a gate is set,
    None: no verifier).
    """

    def __init__(
        self,
        predictor: KeypointPredictor | None = None,
        detector: FaceDetector | None = None,
        max_shape_error: float | None = MAX_SHAPE_ERROR,
        gate: FaceGate | None = FaceGate(),
        verifier: FaceVerifier | None | Literal["shipped"] = "shipped",
    ) -> None:
        threads.configure()  # this process's threads for every library, decided once
        if predictor is None:
            from core.keypoints.landmarks import KeypointPredictor

            predictor = KeypointPredictor.load()
        self.predictor = predictor
        self.detector = detector if detector is not None else default_detector()
        self.max_shape_error = max_shape_error
        self.gate = gate
        # the gate's look at each face; not loaded where nothing would ask it
        if verifier == "shipped":
            verifier = shipped_verifier() if gate is not None else None
        self.verifier = verifier
        self._pictures: dict[int, warp.MaskPicture] = {}
        self._styled: OrderedDict[tuple[int, str], warp.MaskPicture] = OrderedDict()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- public

    def landmarks(self, image: ImageInput, mode: Mode | str = Mode.FACES) -> list[Face]:
        """Every face's box and 68 points (Mode.FACES), or the whole image as one face."""
        return self.find_faces(imageio.decode(image).rgb, mode)

    def apply(
        self,
        image: ImageInput,
        mask_id: MaskChoice,
        mode: Mode | str = Mode.FACES,
        style: StyleChoice = None,
    ) -> MaskedPhoto:
        """The photo with mask ``mask_id`` (1-7) on every face, encoded like the input.

        ``mask_id`` a sequence: a mix, face i from the left wearing ``mask_id[i % len]``.
        ``style`` (:mod:`core.render.style`): the masks' cloth in that colour, pattern or
        picture, through the same warp and light as the plain masks."""
        started = time.perf_counter()
        decoded, rgb, faces = self.mask_pixels(image, mask_id, mode, style)
        data = imageio.encode_like(decoded, rgb)
        ms = (time.perf_counter() - started) * 1000
        log.debug("mask %s on %d face(s) in %.1f ms", mask_id, len(faces), ms)
        return MaskedPhoto(data, decoded.format, decoded.width, decoded.height, tuple(faces), ms)

    def apply_many(
        self,
        image: ImageInput,
        mask_ids: list[int] | tuple[int, ...],
        mode: Mode | str = Mode.FACES,
        style: StyleChoice = None,
    ) -> list[MaskedPhoto]:
        """The photo once per mask in ``mask_ids``, in that order, each encoded like the input.

        The photo is decoded and its faces found and read once; every mask is drawn from the
        same points, so all seven cost little more than the drawing and encoding of each.
        Each result's ``ms`` is the shared work plus its own drawing.
        """
        started = time.perf_counter()
        pictures = [self.picture(mask_id, style) for mask_id in mask_ids]  # unknown ids first
        decoded = imageio.decode(image)
        faces = self.find_faces(decoded.rgb, mode)
        points = [face.points for face in faces]
        shared = time.perf_counter() - started
        results = []
        for picture in pictures:
            drawn = time.perf_counter()
            data = imageio.encode_like(decoded, warp.apply_masks(decoded.rgb, picture, points))
            ms = (shared + time.perf_counter() - drawn) * 1000
            results.append(
                MaskedPhoto(data, decoded.format, decoded.width, decoded.height, tuple(faces), ms)
            )
        log.debug(
            "%d masks on %d face(s) in %.1f ms",
            len(results), len(faces), (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return results

    def sticker(
        self,
        image: ImageInput,
        mode: Mode | str = Mode.FACES,
        mask_id: MaskChoice | None = None,
        style: StyleChoice = None,
    ) -> bytes:
        """The largest face's head cut out on transparency with a white outline: a 512 px WebP
        Telegram sticker (:mod:`core.render.sticker`). With ``mask_id`` the mask is put on
        first (the points are read on the bare face, where they are surest), in ``style``."""
        if mask_id is not None and not isinstance(mask_id, int):
            mask_id = mask_id[0]  # a mix on one face: its first mask
        picture = self.picture(mask_id, style) if mask_id is not None else None
        decoded = imageio.decode(image)
        faces = self.find_faces(decoded.rgb, mode)
        largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        rgb = decoded.rgb
        if picture is not None:
            rgb = warp.apply_masks(rgb, picture, [largest.points])
        return cut_out(rgb, largest.points)

    def apply_many_files(
        self,
        paths: Iterable[str | Path | bytes],
        mask: str | int | MaskPlan = 1,
        mode: Mode | str = Mode.FACES,
        *,
        seed: int | None = None,
        **options: object,
    ) -> Iterator[FileResult]:
        """Mask many photos and videos, one after another, yielding a
        :class:`core.batch.FileResult` per input in order (the encoded outputs in
        ``result.outputs[i].data``); a file that fails is a result with its error's code,
        never an exception, so one bad file does not stop the rest.

        ``mask``: a number, a name or emoji in any of the bot's languages, "all" (seven
        outputs each), "random", or a weighted mix "1:0.5,4:0.3,7:0.2" (a mask drawn per face,
        reproducible with ``seed``). ``options`` are :class:`core.batch.Options`' fields
        (``photo_format``, ``video_format``, ``quality``, ``keep_metadata``, ``labels``,
        ``max_seconds``, ``max_side``, ``video_kind``). ``facemask apply`` runs the same per
        file, over several processes.
        """
        choice = mask if isinstance(mask, MaskPlan) else mask_plan(mask, seed)
        settings = Options(mode=Mode(mode).value, **options)  # type: ignore[arg-type]
        for path in paths:
            yield mask_file(self, path, choice, settings)

    # ----------------------------------------------------------------- stages

    def mask_pixels(
        self,
        image: ImageInput,
        mask_id: MaskChoice,
        mode: Mode | str = Mode.FACES,
        style: StyleChoice = None,
    ) -> tuple[imageio.Decoded, np.ndarray, list[Face]]:
        """Decoded input, masked RGB pixels and the faces, before encoding."""
        ids = mask_ids_of(mask_id)
        pictures = [self.picture(i, style) for i in ids]  # an unknown mask fails before any work
        decoded = imageio.decode(image)
        faces = self.find_faces(decoded.rgb, mode)
        if len(pictures) == 1:
            rgb = warp.apply_masks(decoded.rgb, pictures[0], [f.points for f in faces])
            return decoded, rgb, faces
        # a mix: faces from left to right, each with the next mask, each lit by the photo as
        # it came (as one mask on every face is), laid over the others where they overlap
        rgb = decoded.rgb.copy()
        by_x = sorted(range(len(faces)), key=lambda i: faces[i].box[0] + faces[i].box[2])
        for n, i in enumerate(by_x):
            one = warp.apply_masks(decoded.rgb, pictures[n % len(pictures)], [faces[i].points])
            changed = (one != decoded.rgb).any(axis=2)
            rgb[changed] = one[changed]
        return decoded, rgb, faces

    def find_faces(self, rgb: np.ndarray, mode: Mode | str = Mode.FACES) -> list[Face]:
        if Mode(mode) is Mode.WHOLE:
            h, w = rgb.shape[:2]
            points = self.predictor.predict_whole_image(rgb)
            return [Face((0.0, 0.0, float(w), float(h)), np.asarray(points, np.float32))]
        detections = detect_with_turns(self.detector, rgb)
        if not detections:
            raise NoFaceFoundError()
        read = read_faces(self.predictor, rgb, [d.box for d in detections])
        template = catalog.template().points.astype(np.float64)
        sure = np.full(len(detections), np.nan, np.float32)
        look = np.full((len(detections), 2), np.nan, np.float32)
        if self.gate is not None and self.verifier is not None and len(detections):
            # every face in one call; the second look only where detector and verifier doubt
            sure, look = self.verifier.judge(rgb, read.judged, scores=[d.score for d in detections])
        faces, borderline, doubts = [], [], []
        rows = zip(detections, read.points, read.judged, read.spreads, sure, look, strict=True)
        for d, p, judged, spread, face, seen in rows:
            if d.unsure and self.gate is None:
                continue  # a borderline detection needs the gate's confirmation
            # the face's shape and the gate's evidence from the looks the gate was tuned on
            judged = np.asarray(judged, np.float32)
            error = warp.shape_error(judged, template)
            if self.max_shape_error is not None and error > self.max_shape_error:
                log.debug("dropped a detection without a face shape (%.3f)", error)
                continue
            if self.gate is not None and not self.gate.keeps(
                evidence(
                    rgb,
                    d.score,
                    judged,
                    float(spread),
                    error,
                    float(face),
                    d.unsure,
                    look=float(seen[1]),
                    look_sharp=float(seen[0]),
                )
            ):
                log.debug("dropped a detection that is not a face (plausibility gate)")
                continue
            points = np.asarray(p, np.float32)
            if d.unsure:
                borderline.append(Face(d.box.face_xyxy(), points))
            else:
                faces.append(Face(d.box.face_xyxy(), points))
                doubts.append(float(spread))
        faces = one_reading_each(faces, doubts)
        # a borderline box beside a face can read that face's points: one mask a face
        faces += [f for f in borderline if not any(same_points(f.points, g.points) for g in faces)]
        if not faces:
            raise NoFaceFoundError()
        return faces

    def picture(self, mask_id: int, style: StyleChoice = None) -> warp.MaskPicture:
        """The mask ready to warp (read and prepared on first use, then kept); in ``style``,
        kept among the :data:`KEEP_STYLED` last used."""
        spec = mask_spec(mask_id)
        style = as_style(style)
        with self._lock:
            if style is None:
                if spec.id not in self._pictures:
                    self._pictures[spec.id] = load_picture(spec)
                return self._pictures[spec.id]
            key = (spec.id, style.key)
            picture = self._styled.pop(key, None) or load_picture(spec, style)
            self._styled[key] = picture
            while len(self._styled) > KEEP_STYLED:
                self._styled.popitem(last=False)
            return picture

    def styled_bytes(self) -> int:
        """What the styled pictures kept now take, in bytes (facemask-bench --memory)."""
        with self._lock:
            pictures = list(self._styled.values())
        return sum(level.nbytes for picture in pictures for level in picture.levels)

    # ----------------------------------------------------------------- moving pictures

    def apply_video(
        self,
        source: codec.VideoInput,
        mask_id: int,
        mode: Mode | str = Mode.FACES,
        *,
        kind: str = "video",
        progress: Callable[[float], None] | None = None,
        cancel: threading.Event | None = None,
        max_duration_s: float = codec.MAX_DURATION_S,
        style: StyleChoice = None,
    ) -> MaskedVideo:
        """The video (MP4/MOV/WebM/GIF bytes or path) with mask ``mask_id`` on every face of
        every frame, as H.264 MP4 of ``kind`` "video" | "video_note" | "animation" (see
        :mod:`core.video`); faces tracked and their points smoothed (:mod:`core.video.tracking`).
        ``progress`` gets 0..1 at most every 0.5 s; ``cancel`` set raises JobCancelledError.
        ``style``: the masks' cloth in a colour, pattern or picture, as :meth:`apply`'s."""
        return masking.mask_video(
            self, source, mask_id, mode, kind=kind, progress=progress, cancel=cancel,
            max_duration_s=max_duration_s, style=style,
        )  # fmt: skip

    def video_sticker(
        self,
        source: codec.VideoInput,
        mask_id: int | None,
        mode: Mode | str = Mode.FACES,
        *,
        progress: Callable[[float], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> MaskedVideo:
        """The largest face of the video's first 3 s, masked with ``mask_id`` (None: bare),
        cut out on transparency: a Telegram video sticker (VP9 with alpha in WebM, 512 px,
        at most 256 KB) as a :class:`MaskedVideo` of kind "sticker"
        (:mod:`core.video.sticker`)."""
        return video_sticker.make_video_sticker(
            self, source, mask_id, mode, progress=progress, cancel=cancel
        )

    def landmarks_video(
        self, source: codec.VideoInput, mode: Mode | str = Mode.FACES
    ) -> list[list[tuple[int, np.ndarray]]]:
        """Per frame, every face's (track id, (68, 2) points), tracked and smoothed."""
        return masking.video_landmarks(self, source, mode)


def mask_ids_of(choice: object) -> list[int]:
    """The mask ids of a :data:`MaskChoice`: one id, or a non-empty sequence of them (a mix);
    anything else is an :class:`UnknownMaskError` (the ids themselves are checked by
    :func:`mask_spec`)."""
    if isinstance(choice, int):
        return [choice]
    if isinstance(choice, list | tuple) and choice:
        return list(choice)
    raise UnknownMaskError()


def mask_spec(mask_id: int) -> catalog.MaskSpec:
    """The catalog's mask ``mask_id``; any other id is the caller's mistake, said in a
    sentence (:class:`UnknownMaskError`), not the catalog's bare lookup error."""
    try:
        return catalog.get(mask_id)
    except LookupError:
        raise UnknownMaskError() from None


def as_style(style: StyleChoice) -> Style | None:
    """A :class:`Style` from a style or its id; None (and "") for the mask as drawn."""
    if style is None or isinstance(style, Style):
        return style
    return Style.parse(style) if style.strip() else None


_default_masker: FaceMasker | None = None
_default_lock = threading.Lock()


def default_masker() -> FaceMasker:
    """One shared :class:`FaceMasker` with the shipped model, made on first use."""
    global _default_masker
    with _default_lock:
        if _default_masker is None:
            _default_masker = FaceMasker()
        return _default_masker


def face_mask(imagepath: str | Path | bytes, mask_id: int, crop: bool = False) -> Image.Image:
    """The seed's function, kept: the masked photo as a Pillow image (RGBA if it had alpha)."""
    decoded, rgb, _ = default_masker().mask_pixels(imagepath, mask_id, Mode.from_crop(crop))
    return imageio.to_pil(rgb, decoded.alpha)
