"""Many files, one masker: what ``facemask apply`` and :meth:`core.api.FaceMasker.apply_many_files`
do to each photo or video of a folder.

:func:`mask_file` masks one file (a photo or a video, told by its content) with a
:class:`MaskPlan` (one mask, all seven, or a weighted mix with a mask drawn per face) and
returns a :class:`FileResult`: the encoded outputs in the chosen format (JPEG, PNG, WebP for
photos; MP4, GIF, WebM for videos), what was found, and, on failure, the error's code and
message; it never raises a :class:`core.errors.FaceMaskError`. Nothing here knows about
terminals or processes: the command line (:mod:`core.cli.apply`) runs it in a pool and words
the results.

The bot's limits (60 s, 1280 px videos) are the bot's: here there is none unless asked
(``max_seconds``, ``max_side``).
"""

from __future__ import annotations

import functools
import io
import math
import random
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from core import imageio
from core.errors import FaceMaskError, UnknownMaskError
from core.render import warp
from core.render.style import Style
from core.results import Face, MaskedVideo, Mode
from core.video import codec
from masks import catalog, mix, names


class FileMasker(Protocol):
    """What masking a file needs of a masker (:class:`core.api.FaceMasker` is one)."""

    def find_faces(self, rgb: np.ndarray, mode: Mode | str = ...) -> list[Face]: ...

    def picture(self, mask_id: int, style: Style | None = None) -> warp.MaskPicture: ...

    def apply_video(self, source: codec.VideoInput, mask_id: int, mode: Mode | str = ...,
                    **kwargs: object) -> MaskedVideo: ...  # fmt: skip


PHOTO_FORMATS = ("jpeg", "png", "webp")
VIDEO_FORMATS = ("mp4", "gif", "webm")
#: a file name's extension and the output format it asks for
EXTENSIONS = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp",
    ".mp4": "mp4", ".m4v": "mp4", ".gif": "gif", ".webm": "webm",
}  # fmt: skip
SUFFIX = {
    "jpeg": ".jpg", "png": ".png", "webp": ".webp", "mp4": ".mp4", "gif": ".gif", "webm": ".webm",
}  # fmt: skip
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_EXIF_ORIENTATION = 0x0112
WEBP_QUALITY = 90
MIX = "mix"  # the output tag of a weighted mix (one output, a mask per face)


class WrongFormatError(FaceMaskError):
    """A photo cannot be written as a video, nor a video as a photo."""

    code = "wrong_format"


# --------------------------------------------------------------------------- choosing masks


@dataclass(frozen=True)
class MaskPlan:
    """Which mask each face gets.

    Without ``weights``: one output per id in ``ids`` (one id, or all seven), every face in
    it wearing that mask. With ``weights``: one output, each face's mask drawn from ``ids``
    with those weights, by a generator seeded with ``seed`` and the file's name, so that a
    data set comes out the same again whatever the order or the number of processes.
    """

    ids: tuple[int, ...]
    weights: tuple[float, ...] | None = None
    seed: int = 0
    #: ``--mask mix``: every face a different mask (masks.mix), as the bot's 🎲 does
    distinct: bool = False

    @property
    def tags(self) -> tuple[str, ...]:
        """One per output: the mask's id, or "mix"."""
        mixed = self.weights is not None or self.distinct
        return (MIX,) if mixed else tuple(str(i) for i in self.ids)

    def draw(self, key: str, n: int) -> tuple[int, ...]:
        """The masks of ``n`` faces (or of one video) of the file called ``key``."""
        if self.distinct:  # faces left to right, the seven masks in a seeded random order
            rng = random.Random(f"{self.seed}:{key}")
            order = mix.choose(mask_ids=self.ids, rng=rng)
            return tuple(order[i % len(order)] for i in range(n))
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8"))])
        p = np.asarray(self.weights, np.float64)
        return tuple(int(i) for i in rng.choice(self.ids, size=n, p=p / p.sum()))


def find_mask(name: str | int) -> catalog.MaskSpec:
    """A mask by number, emoji or name in any of the bot's languages, or UnknownMaskError."""
    spec = names.find(str(name))
    if spec is None:
        known = ", ".join(f"{s.id} {names.slug(s)}" for s in catalog.masks())
        raise UnknownMaskError(f"There is no mask called {str(name)!r}; the masks are: {known}.")
    return spec


def mask_plan(text: str | int, seed: int | None = None) -> MaskPlan:
    """``"3"``, ``"villain"``, ``"🦹"``, ``"all"``, ``"random"`` or a weighted mix
    ``"1:0.5,4:0.3,7:0.2"`` (names work in a mix too). ``seed`` None: a fresh one."""
    text = str(text).strip()
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (1 << 32))
    every = tuple(s.id for s in catalog.masks())
    if text.casefold() == "all":
        return MaskPlan(every, None, seed)
    if text.casefold() == "random":
        return MaskPlan(every, (1.0,) * len(every), seed)
    if text.casefold() == MIX:
        return MaskPlan(every, None, seed, distinct=True)
    if ":" in text or "," in text:
        ids, weights = [], []
        for part in text.split(","):
            name, _, weight = part.partition(":")
            try:
                w = float(weight) if weight.strip() else 1.0
            except ValueError:
                raise UnknownMaskError(f"{part.strip()!r}: a weight must be a number.") from None
            if not math.isfinite(w) or w < 0:
                raise UnknownMaskError(f"{part.strip()!r}: a weight must be 0 or more.")
            ids.append(find_mask(name.strip()).id)
            weights.append(w)
        if sum(weights) <= 0:
            raise UnknownMaskError("The weights of a mix must not all be 0.")
        return MaskPlan(tuple(ids), tuple(weights), seed)
    return MaskPlan((find_mask(text).id,), None, seed)


# --------------------------------------------------------------------------- results


@dataclass
class Output:
    """One output of a file: its mask (an id or "mix"), the encoded bytes and, per face,
    the mask it wears; ``labels`` (data-set labels) where asked for."""

    tag: str
    format: str  # "jpeg" | "png" | "webp" | "mp4" | "gif" | "webm"
    data: bytes | None
    masks: tuple[int, ...] = ()
    labels: list[dict] | None = None  # per face: mask id, polygon, box
    region: bytes | None = None  # PNG: the pixels the masks cover (0-255)


@dataclass
class FileResult:
    """What became of one input: ``status`` "done" | "failed" | "skipped"."""

    input: str
    status: str = "done"
    kind: str = "photo"  # "photo" | "video"
    error: str | None = None  # the FaceMaskError's code ("no_face", ...), "internal" for a bug
    message: str | None = None  # the error's own sentence (the command line words its own)
    width: int = 0
    height: int = 0
    faces: tuple[Face, ...] = ()
    outputs: list[Output] = field(default_factory=list)
    video: dict | None = None  # frames, fps, duration_s, has_audio, faces_mean, ...
    ms: float = 0.0

    @property
    def face_count(self) -> float:
        if self.video is not None:
            return float(self.video.get("faces_mean", 0.0))
        return len(self.faces)


@dataclass(frozen=True)
class Options:
    """How each file is masked and encoded (plain values: they cross to worker processes)."""

    mode: str = Mode.FACES.value
    photo_format: str | None = None  # None: the input's family
    video_format: str | None = None  # None: GIF for a GIF, WebM for a WebM, else MP4
    quality: int | None = None  # JPEG / WebP quality, 1-100
    keep_metadata: bool = False  # EXIF (not its orientation: that is in the pixels now)
    labels: bool = False
    max_seconds: float | None = None  # None: any length
    max_side: int | None = None  # None: the input's size
    video_kind: str | None = None  # codec.KINDS; None: "animation" for a GIF, else "video"
    style: str | None = None  # a colour ("navy", "#0473e2") or a pattern's name
    pattern_file: str | None = None  # a picture printed on the cloth masks


def round_points(points: np.ndarray) -> list[list[float]]:
    """Points as JSON wants them: to 0.01 px (float64 first: float32's 184.8 is 184.8000030...)."""
    return np.round(np.asarray(points, np.float64), 2).tolist()


# --------------------------------------------------------------------------- one file


def mask_file(
    masker: FileMasker,
    source: str | Path | bytes,
    choice: MaskPlan,
    options: Options = Options(),
    *,
    key: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> FileResult:
    """Mask one photo or video; errors a user can cause are in the result, not raised.

    ``key`` names the file for the mix's generator (default: its name).
    """
    started = time.perf_counter()
    name = "-" if isinstance(source, (bytes, bytearray)) else str(source)
    result = FileResult(name)
    try:
        data = imageio.read_bytes(source)
        key = key if key is not None else Path(name).name
        if codec.looks_like_video(data):
            result.kind = "video"
            _mask_video(masker, data, choice, options, key, result, progress)
        else:
            _mask_photo(masker, data, choice, options, key, result)
    except FaceMaskError as err:
        result.status, result.error, result.message = "failed", err.code, str(err)
        result.outputs = []
    result.ms = (time.perf_counter() - started) * 1000
    return result


def _mask_photo(
    masker: FileMasker, data: bytes, choice: MaskPlan, options: Options, key: str, result
) -> None:
    fmt = options.photo_format
    if fmt is not None and fmt not in PHOTO_FORMATS:
        raise WrongFormatError(f"a photo cannot be written as {fmt}: use jpeg, png or webp")
    style = style_of(options.style, options.pattern_file)
    # an unknown mask or style: before any work
    pictures = {i: masker.picture(i, style) for i in choice.ids}
    decoded = imageio.decode(data)
    rgb, alpha = decoded.rgb, decoded.alpha
    if options.max_side and max(rgb.shape[:2]) > options.max_side:
        scale = options.max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = None if alpha is None else cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    faces = masker.find_faces(rgb, options.mode)
    result.width, result.height, result.faces = rgb.shape[1], rgb.shape[0], tuple(faces)
    fmt = fmt or decoded.format.lower()
    exif = _exif(data) if options.keep_metadata else None
    for tag in choice.tags:
        per_face = choice.draw(key, len(faces)) if tag == MIX else (int(tag),) * len(faces)
        out = rgb
        for mask_id in sorted(set(per_face)):  # one call per mask: its light, its cover
            points = [f.points for f, m in zip(faces, per_face) if m == mask_id]
            out = warp.apply_masks(out, pictures[mask_id], points)
        encoded = encode_photo(out, alpha, fmt, options.quality, decoded.icc_profile, exif)
        output = Output(tag, fmt, encoded, per_face)
        if options.labels:
            output.labels, output.region = _labels(rgb.shape[:2], faces, per_face, pictures)
        result.outputs.append(output)


@functools.cache
def style_of(name: str | None, picture_file: str | None) -> Style | None:
    """The masks' style from the command line's ``--color``/``--pattern`` (once per
    process): a colour or a pattern's name, or a picture file printed on the cloth."""
    if picture_file:
        return Style.from_picture(imageio.read_bytes(picture_file))
    return Style.parse(name) if name else None


def encode_photo(
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    fmt: str,
    quality: int | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> bytes:
    """RGB (+ alpha, where the format keeps it) as JPEG, PNG or WebP."""
    extra: dict = {}
    if icc_profile:
        extra["icc_profile"] = icc_profile
    if exif:
        extra["exif"] = exif
    buf = io.BytesIO()
    if fmt == "jpeg":
        q = quality or imageio.JPEG_QUALITY
        imageio.to_pil(rgb).save(buf, "JPEG", quality=q, **extra)
    elif fmt == "webp":
        imageio.to_pil(rgb, alpha).save(buf, "WEBP", quality=quality or WEBP_QUALITY, **extra)
    else:
        imageio.to_pil(rgb, alpha).save(buf, "PNG", compress_level=3, **extra)
    return buf.getvalue()


def _exif(data: bytes) -> bytes | None:
    """The input's EXIF without its orientation (applied to the pixels), or None."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            exif = img.getexif()
            if not exif:
                return None
            exif.pop(_EXIF_ORIENTATION, None)
            return exif.tobytes()
    except Exception:  # unreadable EXIF costs the metadata, not the photo
        return None


def _labels(
    shape: tuple[int, int], faces: Sequence[Face], per_face: Sequence[int], pictures: dict
) -> tuple[list[dict], bytes]:
    """Per face its mask, box and the mask's outline (polygon); and one PNG of the pixels
    the masks cover (0-255, at the photo's size)."""
    h, w = shape
    coverage = np.zeros((h, w), np.float32)
    labels = []
    for face, mask_id in zip(faces, per_face):
        alpha = np.zeros((h, w), np.float32)
        overlay = warp.warp_mask(pictures[mask_id], face.points, (h, w))
        if overlay is not None:
            x0, y0, x1, y1 = overlay.box
            a = overlay.rgba[..., 3]
            if a.shape != (y1 - y0, x1 - x0):
                a = cv2.resize(a, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            alpha[y0:y1, x0:x1] = a
        np.maximum(coverage, alpha, out=coverage)
        contours, _ = cv2.findContours(
            (alpha >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        polygon = np.zeros((0, 2))
        if contours:
            polygon = max(contours, key=cv2.contourArea).reshape(-1, 2)
        labels.append(
            {
                "mask": int(mask_id),
                "box": [round(float(v), 2) for v in face.box],
                "points": round_points(face.points),
                "polygon": polygon.astype(np.float64).tolist(),
                "area": int((alpha >= 0.5).sum()),
            }
        )
    buf = io.BytesIO()
    Image.fromarray(np.round(coverage * 255).astype(np.uint8), "L").save(buf, "PNG")
    return labels, buf.getvalue()


# --------------------------------------------------------------------------- videos


@contextmanager
def _video_side(max_side: int | None) -> Iterator[None]:
    # core.video's output size is the bot's (MAX_SIDE, read when each video starts); a file
    # on disk keeps its own unless asked. Set for this call, in this process only.
    before = codec.MAX_SIDE
    codec.MAX_SIDE = max_side or 1 << 30
    try:
        yield
    finally:
        codec.MAX_SIDE = before


def _mask_video(
    masker: FileMasker,
    data: bytes,
    choice: MaskPlan,
    options: Options,
    key: str,
    result: FileResult,
    progress: Callable[[float], None] | None,
) -> None:
    fmt = options.video_format or (
        "gif" if data[:3] == b"GIF" else "webm" if data[:4] == b"\x1aE\xdf\xa3" else "mp4"
    )
    if fmt not in VIDEO_FORMATS:
        raise WrongFormatError(f"a video cannot be written as {fmt}: use mp4, gif or webm")
    kind = options.video_kind or ("animation" if data[:3] == b"GIF" else "video")
    limit = options.max_seconds if options.max_seconds else math.inf
    style = style_of(options.style, options.pattern_file)
    tags = choice.tags
    for n, tag in enumerate(tags):
        mask_id = choice.draw(key, 1)[0] if tag == MIX else int(tag)

        def step(p: float, n: int = n) -> None:
            if progress is not None:
                progress((n + p) / len(tags))

        with _video_side(options.max_side):
            video = masker.apply_video(
                data, mask_id, options.mode, kind=kind, progress=step, max_duration_s=limit,
                style=style,
            )  # fmt: skip
        encoded = video.data if fmt == "mp4" else convert_video(video.data, fmt, options.quality)
        result.outputs.append(Output(tag, fmt, encoded, (mask_id,)))
        result.width, result.height = video.width, video.height
        result.video = {
            "frames": video.frames,
            "fps": video.fps,
            "duration_s": video.duration_s,
            "has_audio": video.has_audio and fmt != "gif",
            "faces_mean": video.faces_mean,
            "scaled_down": video.scaled_down,
            "kind": video.kind,
            "complete": video.complete,
        }


def convert_video(mp4: bytes, fmt: str, quality: int | None = None) -> bytes:
    """core.video's H.264 MP4 as an animated GIF or a VP9 WebM (with Opus sound)."""
    import av

    if fmt == "gif":
        return _to_gif(mp4)
    out_buf = io.BytesIO()
    with av.open(io.BytesIO(mp4)) as src, av.open(out_buf, "w", format="webm") as out:
        v_in = src.streams.video[0]
        v_out = out.add_stream("libvpx-vp9", rate=v_in.average_rate or 30)
        v_out.width, v_out.height, v_out.pix_fmt = v_in.width, v_in.height, "yuv420p"
        # quality 1-100 -> CRF 63-4 (VP9's 0-63, lower is better); 31 is libvpx's advice for HD
        crf = 31 if quality is None else round(63 - 59 * (min(max(quality, 1), 100) / 100))
        v_out.options = {"crf": str(crf), "b:v": "0", "deadline": "realtime", "cpu-used": "8"}
        a_in = src.streams.audio[0] if src.streams.audio else None
        a_out = out.add_stream("libopus", rate=48000) if a_in is not None else None
        streams = [v_in] + ([a_in] if a_in is not None else [])
        for packet in src.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    frame.pts = None
                    out.mux(v_out.encode(frame))
                elif a_out is not None:
                    frame.pts = None
                    out.mux(a_out.encode(frame))
        out.mux(v_out.encode(None))
        if a_out is not None:
            out.mux(a_out.encode(None))
    return out_buf.getvalue()


def _to_gif(mp4: bytes) -> bytes:
    import av

    frames, durations = [], []
    with av.open(io.BytesIO(mp4)) as src:
        stream = src.streams.video[0]
        last = None
        for frame in src.decode(stream):
            t = float(frame.time) if frame.time is not None else (last or 0.0) + 0.04
            if last is not None:
                durations.append(max(20, round((t - last) * 1000)))
            last = t
            frames.append(frame.to_image())
    if not frames:
        raise FaceMaskError("The masked video has no frames.")
    durations.append(durations[-1] if durations else 40)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buf.getvalue()
