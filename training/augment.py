"""Augmentation that keeps points and pixels in step, batched in torch (CPU or GPU).

Geometry goes through core.keypoints.preprocess.crop_matrix, the function serving uses, so a
training crop is cut exactly the way the product cuts one; only the box is jittered:

* ``detector`` - the face box of a box OpenCV's Haar detector would find, with its
  measured scatter (centre sd 0.10/0.04 of the keypoint box, side sd 0.10), widened, turned
  into a face box as the detector's adapter turns its boxes (``core.detection.haar.haar_face_box``);
* ``refine`` - the box of a first pass's points (small jitter): the second pass;
* ``whole`` - the whole image is the face (the seed's crop=False mode).

Then rotation, mirror (with the 68-point permutation and the data set's mirror shift, see
MIRROR_SHIFT), colour, greyscale, blur, noise. JPEG artefacts come from a second, heavily
compressed copy of each source image. Occlusion (``p_occlude``, :mod:`training.occlusion`)
draws a worn mask, sunglasses, a hand, a bar, a cut frame or the dark on the source photo
before it is cropped; each batch then also carries the same crops without it, for
teachers to read (their targets for a covered face come from seeing it uncovered).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.detection.boxes import FaceBox, keypoint_box, whole_image_box
from core.detection.haar import HAAR_DY, HAAR_SIDE_RATIO, haar_face_box
from core.keypoints.face68 import FLIP_PERMUTATION
from core.keypoints.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    apply_matrix,
    box_from_points,
    crop_matrix,
    points_to_unit,
)
from training.occlusion import DEFAULT_WEIGHTS, occlude

# The data set's points sit right of where a mirror image puts them: a network trained on
# unmirrored crops, shown mirrored training photos (pixel x -> W - 1 - x), reads the points
# back 0.85 px + 0.93% of the image width left of the labels, on average over 700 training
# images (`facemask-mirror`; validation people: 0.64 px + 1.02%). Mirrored straight, a
# crop's labels are off by that much (~2.7 px on a 200 px photo, ~4% of the eye distance),
# which cost 0.4-0.5 points of validation NME. So a mirrored crop's points move left by
# (pixels, fraction of the width) first.
MIRROR_SHIFT = (0.85, 0.0093)


@dataclass(frozen=True)
class AugmentConfig:
    p_detector: float = 0.6
    p_whole: float = 0.15  # the rest: refine
    detector_jitter: float = 1.4  # x the measured detector scatter
    rotation: float = 30.0  # degrees, uniform +-
    p_rotate: float = 0.8
    # mirrored crops, off: with the shift below they still trailed unmirrored ones (Lite0 from
    # ImageNet 3.98 vs 3.95%, Lite2 fine-tune 3.82 vs 3.81% on the validation people)
    p_flip: float = 0.0
    mirror_shift: tuple[float, float] = MIRROR_SHIFT  # (pixels, fraction of the width)
    brightness: float = 0.35
    contrast: float = 0.35
    saturation: float = 0.4
    p_grey: float = 0.1
    p_blur: float = 0.2
    p_jpeg: float = 0.25
    noise: float = 0.03
    p_erase: float = 0.0  # a random grey rectangle over part of the face (occlusion)
    p_occlude: float = 0.0  # a drawn occluder (training.occlusion) on the photo
    occluders: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # threads drawing occluders (0: in line, one random stream; N: each photo its own
    # stream seeded from it, drawn N at a time, for a GPU that would wait on the drawing)
    draw_threads: int = 0


def jpeg_degrade(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of each (N, H, W, 3) image through JPEG at quality 10-40."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        q = int(rng.integers(10, 41))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img
    return out


def sample_boxes(
    points: np.ndarray, sizes: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> list[FaceBox]:
    boxes = []
    for pts, (h, w) in zip(points, sizes):
        mode = rng.random()
        cx, cy, s = keypoint_box(pts)
        if mode < cfg.p_detector:
            j = cfg.detector_jitter
            side = s * HAAR_SIDE_RATIO * (1 + rng.normal(0, 0.10 * j))
            dcx = cx + rng.normal(0, 0.10 * j) * s
            dcy = cy + (HAAR_DY + rng.normal(0, 0.04 * j)) * s
            box = haar_face_box(dcx - side / 2, dcy - side / 2, dcx + side / 2, dcy + side / 2)
        elif mode < cfg.p_detector + cfg.p_whole:
            box = whole_image_box(int(h), int(w))
            box = FaceBox(box.cx, box.cy, box.side * float(rng.uniform(0.9, 1.1)))
        else:
            box = box_from_points(pts)
            box = FaceBox(
                box.cx + rng.normal(0, 0.03) * s,
                box.cy + rng.normal(0, 0.03) * s,
                box.side * float(np.exp(rng.normal(0, 0.05))),
            )
        angle = (
            float(rng.uniform(-cfg.rotation, cfg.rotation)) if rng.random() < cfg.p_rotate else 0.0
        )
        boxes.append(FaceBox(box.cx, box.cy, box.side, angle))
    return boxes


def matrix_to_theta(matrix: np.ndarray, size: int, src_h: int, src_w: int) -> np.ndarray:
    """An image->crop pixel matrix as affine_grid's theta (crop -> source, align_corners=False)."""
    inv = cv2.invertAffineTransform(matrix)
    # normalised crop coords -> crop pixels -> source pixels -> normalised source coords
    to_px = np.array([[size / 2, 0, size / 2 - 0.5], [0, size / 2, size / 2 - 0.5], [0, 0, 1]])
    to_norm = np.array([[2 / src_w, 0, 1 / src_w - 1], [0, 2 / src_h, 1 / src_h - 1], [0, 0, 1]])
    return (to_norm @ np.vstack([inv, [0, 0, 1]]) @ to_px)[:2]


def crop_batch(
    images: torch.Tensor, boxes: list[FaceBox], size: int, flips: np.ndarray
) -> tuple[torch.Tensor, np.ndarray]:
    """(N, 3, C, C) uint8 canvases -> (N, 3, S, S) float crops in 0..255, and matrices."""
    c = images.shape[-1]
    matrices = np.stack([crop_matrix(b, size, bool(f)) for b, f in zip(boxes, flips)])
    theta = torch.as_tensor(
        np.stack([matrix_to_theta(m, size, c, c) for m in matrices]),
        dtype=torch.float32,
        device=images.device,
    )
    grid = F.affine_grid(theta, [len(boxes), 3, size, size], align_corners=False)
    crops = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return crops, matrices


def target_points(
    points: np.ndarray,
    matrices: np.ndarray,
    flips: np.ndarray,
    size: int,
    widths: np.ndarray | None = None,
    mirror_shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Unit crop coordinates of the points; a mirrored crop's points are its partners',
    moved left by ``mirror_shift`` (pixels, fraction of the image's width) before mirroring."""
    points = np.array(points, np.float64)
    if flips.any() and any(mirror_shift):
        w = np.zeros(len(points)) if widths is None else np.asarray(widths, np.float64)
        points[flips, :, 0] -= (mirror_shift[0] + mirror_shift[1] * w[flips])[:, None]
    out = np.stack([apply_matrix(m, p) for m, p in zip(matrices, points)])
    out[flips] = out[flips][:, FLIP_PERMUTATION]
    return points_to_unit(out, size).astype(np.float32)


def photometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Colour jitter on (N, 3, S, S) floats in 0..255."""
    n, dev = x.shape[0], x.device

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, generator=gen, device=dev) * (hi - lo) + lo

    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * u(1 - cfg.saturation, 1 + cfg.saturation)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * u(1 - cfg.contrast, 1 + cfg.contrast)
    x = x * u(1 - cfg.brightness, 1 + cfg.brightness)
    to_grey = torch.rand(n, 1, 1, 1, generator=gen, device=dev) < cfg.p_grey
    x = torch.where(to_grey, x.mean(1, keepdim=True).expand_as(x), x)
    blur = torch.rand(n, generator=gen, device=dev) < cfg.p_blur
    if blur.any():
        sigma = float(torch.rand(1, generator=gen, device=dev)) * 1.5 + 0.5
        k = torch.arange(-3, 4, device=dev, dtype=x.dtype)
        k = torch.exp(-(k**2) / (2 * sigma**2))
        k = k / k.sum()
        xb = x[blur]
        xb = F.conv2d(
            F.pad(xb, (3, 3, 0, 0), mode="replicate"),
            k.view(1, 1, 1, 7).repeat(3, 1, 1, 1),
            groups=3,
        )
        xb = F.conv2d(
            F.pad(xb, (0, 0, 3, 3), mode="replicate"),
            k.view(1, 1, 7, 1).repeat(3, 1, 1, 1),
            groups=3,
        )
        x[blur] = xb
    x = x + torch.randn(x.shape, generator=gen, device=dev) * (255 * cfg.noise) * u(0, 1)
    if cfg.p_erase > 0:
        x = random_erase(x, cfg.p_erase, gen)
    return x.clamp(0, 255)


def random_erase(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Grey out one rectangle (10-40% of each side) in a fraction p of the crops."""
    n, _, h, w = x.shape
    dev = x.device
    r = torch.rand(n, 5, generator=gen, device=dev)
    rh, rw = (0.1 + 0.3 * r[:, 0]) * h, (0.1 + 0.3 * r[:, 1]) * w
    y0, x0 = r[:, 2] * (h - rh), r[:, 3] * (w - rw)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (ys >= y0.view(-1, 1, 1))
        & (ys < (y0 + rh).view(-1, 1, 1))
        & (xs >= x0.view(-1, 1, 1))
        & (xs < (x0 + rw).view(-1, 1, 1))
        & (r[:, 4] < p).view(-1, 1, 1)
    )
    return torch.where(inside.unsqueeze(1), torch.full_like(x, 127.0), x)


def normalize_tensor(x: torch.Tensor) -> torch.Tensor:
    """Floats 0..255 -> ImageNet mean/std, as core.keypoints.preprocess.normalize does."""
    mean = torch.as_tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class Batch(NamedTuple):
    x: torch.Tensor  # normalised crops
    y: torch.Tensor  # unit targets
    mirrored: torch.Tensor  # bool, which crops are mirrored
    clean: torch.Tensor  # the same crops with no occluder and no photometric change


class Augmenter:
    """Draws an augmented batch from canvases held on a device."""

    def __init__(
        self,
        images: np.ndarray,
        points: np.ndarray,
        sizes: np.ndarray,
        size: int,
        cfg: AugmentConfig,
        device: str,
        seed: int,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self._drawers: ThreadPoolExecutor | None = None
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.cfg, self.size, self.device = cfg, size, device
        self.points, self.sizes = points, sizes
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
        self.degraded = (
            torch.from_numpy(jpeg_degrade(images, self.rng))
            .permute(0, 3, 1, 2)
            .contiguous()
            .to(device)
            if cfg.p_jpeg > 0
            else None
        )

    def batch(self, idx: np.ndarray) -> Batch:
        """Crops, their targets, which are mirrored, and the crops without occlusion."""
        cfg = self.cfg
        boxes = sample_boxes(self.points[idx], self.sizes[idx], cfg, self.rng)
        flips = self.rng.random(len(idx)) < cfg.p_flip
        idx_t = torch.as_tensor(idx, device=self.device)
        src = self.images[idx_t]
        if self.degraded is not None:
            use = torch.as_tensor(self.rng.random(len(idx)) < cfg.p_jpeg, device=self.device)
            src = torch.where(use.view(-1, 1, 1, 1), self.degraded[idx_t], src)
        crops, matrices = crop_batch(src, boxes, self.size, flips)
        clean = crops
        if cfg.p_occlude > 0:
            covered = self.occluded(src, idx)
            if covered is not src:
                crops, _ = crop_batch(covered, boxes, self.size, flips)
        crops = photometric(crops, cfg, self.gen)  # makes new tensors: clean stays
        target = target_points(
            self.points[idx], matrices, flips, self.size, self.sizes[idx, 1], cfg.mirror_shift
        )
        return Batch(
            normalize_tensor(crops),
            torch.from_numpy(target).to(self.device),
            torch.from_numpy(flips).to(self.device),
            normalize_tensor(clean),
        )

    def occluded(self, src: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        """``src`` with an occluder drawn on a ``p_occlude`` share of its photos (drawn in
        numpy on the photo's part of the canvas, where its points are); ``src`` itself
        when none is drawn."""
        chosen = np.flatnonzero(self.rng.random(len(idx)) < self.cfg.p_occlude)
        if not len(chosen):
            return src
        out = src.clone()
        photos = []
        for row in chosen:
            h, w = (int(v) for v in self.sizes[idx[row]])
            photos.append(out[row, :, :h, :w].permute(1, 2, 0).cpu().numpy())
        points = [self.points[idx[row]] for row in chosen]
        if self.cfg.draw_threads > 1:
            seeds = self.rng.integers(2**63, size=len(chosen))

            def draw(photo: np.ndarray, pts: np.ndarray, seed: int) -> np.ndarray:
                return occlude(photo, pts, np.random.default_rng(seed), self.cfg.occluders)[0]

            if self._drawers is None:
                self._drawers = ThreadPoolExecutor(self.cfg.draw_threads, "occlude")
            drawn = list(self._drawers.map(draw, photos, points, seeds))
        else:
            drawn = [occlude(a, p, self.rng, self.cfg.occluders)[0] for a, p in zip(photos, points)]
        for row, image in zip(chosen, drawn):
            h, w = image.shape[:2]
            out[row, :, :h, :w] = torch.from_numpy(image).permute(2, 0, 1).to(out.device)
        return out
