import numpy as np
import torch

from core.detection.boxes import FaceBox
from core.keypoints.face68 import FLIP_PERMUTATION
from core.keypoints.preprocess import crop_image
from training.augment import AugmentConfig, Augmenter, crop_batch, target_points


def _dots(points: np.ndarray, canvas: int = 200) -> np.ndarray:
    img = np.zeros((canvas, canvas, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        img[y - 1 : y + 2, x - 1 : x + 2] = 255
    return img


def _blob_centres(crop: np.ndarray, targets: np.ndarray, size: int) -> np.ndarray:
    """Brightness-weighted centre of the crop around each target (crop pixels)."""
    out = []
    for u, v in targets * size - 0.5:
        x0, y0 = int(round(u)) - 3, int(round(v)) - 3
        patch = crop[max(y0, 0) : y0 + 7, max(x0, 0) : x0 + 7].astype(float)
        ys, xs = np.mgrid[max(y0, 0) : y0 + 7, max(x0, 0) : x0 + 7]
        w = patch.sum()
        out.append((np.nan, np.nan) if w == 0 else ((xs * patch).sum() / w, (ys * patch).sum() / w))
    return np.asarray(out)


def test_rotated_flipped_crops_keep_points_on_their_pixels():
    rng = np.random.default_rng(3)
    points = rng.uniform(60, 140, (68, 2)).astype(np.float32)
    canvas = torch.from_numpy(_dots(points)).permute(2, 0, 1)[None]
    size = 128
    for angle, flip in ((0, False), (25, False), (-30, True), (10, True)):
        box = FaceBox(100, 100, 120, angle)
        crop, matrices = crop_batch(canvas, [box], size, np.array([flip]))
        targets = target_points(points[None], matrices, np.array([flip]), size)[0]
        if flip:  # a mirrored face's point k is the original's mirror partner
            targets = targets[np.argsort(FLIP_PERMUTATION)]
        centres = _blob_centres(crop[0, 0].numpy(), targets, size)
        err = np.nanmedian(np.linalg.norm(centres - (targets * size - 0.5), axis=1))
        assert err < 0.6, (angle, flip, err)


def test_training_crop_equals_serving_crop():
    rng = np.random.default_rng(0)
    img = (rng.random((160, 160, 3)) * 255).astype(np.uint8)
    img = np.asarray(
        torch.nn.functional.avg_pool2d(
            torch.from_numpy(img).permute(2, 0, 1)[None].float(), 5, 1, 2
        )[0].permute(1, 2, 0)
    )
    img = img.astype(np.uint8)
    box = FaceBox(80.3, 77.1, 100.0, 12.0)
    serving, _ = crop_image(img, box, 112)
    training, _ = crop_batch(
        torch.from_numpy(img).permute(2, 0, 1)[None], [box], 112, np.array([False])
    )
    diff = np.abs(serving.astype(float) - training[0].permute(1, 2, 0).numpy())
    assert diff.mean() < 1.0


def test_augmenter_batch_shapes_and_targets_inside_crop(tiny_dataset):
    from training.data import build_pack, load_splits

    pack = build_pack({"train": load_splits(tiny_dataset).train}, canvas=160, progress=False)
    aug = Augmenter(pack.images, pack.points, pack.sizes, 64, AugmentConfig(p_erase=0.5), "cpu", 0)
    x, y, mirrored, clean = aug.batch(np.arange(len(pack)))
    assert x.shape == clean.shape == (len(pack), 3, 64, 64) and y.shape == (len(pack), 68, 2)
    assert torch.isfinite(x).all()
    # most points land inside the crop (rotation and shifts may push a few jaw points out)
    inside = ((y > 0) & (y < 1)).all(-1).float().mean()
    assert inside > 0.9


def test_mirrored_targets_move_by_the_mirror_shift():
    rng = np.random.default_rng(5)
    points = rng.uniform(40, 160, (2, 68, 2)).astype(np.float32)
    box = FaceBox(100, 100, 150, 20.0)
    size = 128
    flips = np.array([False, True])
    canvas = torch.zeros((2, 3, 200, 200), dtype=torch.uint8)
    _, matrices = crop_batch(canvas, [box, box], size, flips)
    widths = np.array([180, 180])
    straight = target_points(points, matrices, flips, size, widths)
    shifted = target_points(points, matrices, flips, size, widths, (0.85, 0.01))
    assert np.array_equal(straight[0], shifted[0])  # an unmirrored crop keeps its points
    # the mirrored crop's points are those of the source points moved left by 0.85 + 1.8 px
    moved = points[1] - [0.85 + 0.01 * 180, 0.0]
    expected = target_points(moved[None], matrices[1:], flips[1:], size)[0]
    np.testing.assert_allclose(shifted[1], expected, atol=1e-6)
    # in the crop, a mirrored image's left is the right: the points moved right, by the scale
    d = (shifted[1] - straight[1]) * size
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 2.65 * size / 150, rtol=1e-4)
    assert (d[:, 0] > 0).all()
