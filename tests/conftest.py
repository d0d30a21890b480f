from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import pytest_asyncio

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "face-keypoints"
#: their async tests share the session's event loop: the fake Telegram server and the bot
#: processes their session fixtures start live in it
SESSION_LOOP_FOLDERS = tuple(Path(__file__).parent / name for name in ("bot", "chaos"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        folders = Path(item.fspath).parents
        if any(folder in folders for folder in SESSION_LOOP_FOLDERS) and (
            pytest_asyncio.is_async_test(item)
        ):
            item.add_marker(marker, append=False)


def _face_points(rng: np.random.Generator, size: int) -> np.ndarray:
    """A plausible 68-point layout (an ellipse jaw, eyes, nose, mouth) inside a square image."""
    c, r = size / 2, size / 4
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    jaw = np.stack([c - r * np.cos(t), c + r * 0.2 + r * np.sin(t) * 0.9], 1)
    brows = np.stack([np.linspace(c - r * 0.8, c + r * 0.8, 10), np.full(10, c - r * 0.45)], 1)
    nose = np.stack(
        [
            np.r_[np.full(4, c), np.linspace(c - r * 0.2, c + r * 0.2, 5)],
            np.r_[np.linspace(c - r * 0.3, c + r * 0.1, 4), np.full(5, c + r * 0.2)],
        ],
        1,
    )
    eye = np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, 7)[:6]) * r * 0.15,
            np.sin(np.linspace(0, 2 * np.pi, 7)[:6]) * r * 0.06,
        ],
        1,
    )
    eyes = np.r_[eye + (c - r * 0.45, c - r * 0.3), eye + (c + r * 0.45, c - r * 0.3)]
    mouth = np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, 21)[:20]) * r * 0.35,
            np.sin(np.linspace(0, 2 * np.pi, 21)[:20]) * r * 0.1 + c + r * 0.55,
        ],
        1,
    )
    mouth[:, 0] += c
    pts = np.concatenate([jaw, brows, nose, eyes, mouth]).astype(np.float32)
    return pts + rng.normal(0, 1.0, pts.shape).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A data set in the upstream layout: training/ and test/ folders, CSVs, people list.

    Images are drawn faces (skin ellipse, dark eyes and mouth) so a model can learn
    something in a few steps; test/ images are PNG files named .jpg, as upstream's are.
    """
    root = tmp_path_factory.mktemp("face-keypoints")
    rng = np.random.default_rng(0)
    people = ["Ann_Smith", "Bob_Jones", "Cy_Young", "Di_Prince", "Ed_Wood", "Flo_Rida"]
    for split in ("training", "test"):
        (root / split).mkdir()
        rows = ["Unnamed: 0," + ",".join(f"{a}{i}" for i in range(68) for a in "xy")]
        for person in people:
            for k in range(3 if split == "training" else 1):
                size = int(rng.integers(96, 160))
                pts = _face_points(rng, size)
                img = np.full((size, size, 3), rng.integers(40, 200, 3), np.uint8)
                cx, cy = pts[:17, 0].mean(), pts[:, 1].mean()
                cv2.ellipse(
                    img, (int(cx), int(cy)), (size // 4, size // 3), 0, 0, 360, (190, 150, 120), -1
                )
                for sl in (slice(36, 42), slice(42, 48), slice(48, 60)):
                    cv2.fillPoly(img, [pts[sl].astype(np.int32)], (30, 20, 20))
                name = f"{person}_{k:02d}.jpg"
                ext = ".jpg" if split == "training" else ".png"
                ok, buf = cv2.imencode(ext, img)
                (root / split / name).write_bytes(buf.tobytes())
                rows.append(name + "," + ",".join(f"{v:.3f}" for v in pts.ravel()))
        (root / f"{split}_frames_keypoints.csv").write_text("\n".join(rows) + "\n")
    (root / "validation_people.txt").write_text("Ed_Wood\nFlo_Rida\n")
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "training_frames_keypoints.csv").exists():
        pytest.skip(f"the shared data set is not at {SHARED_DATA}")
    return SHARED_DATA
