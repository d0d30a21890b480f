"""lab.cli_bench: the group photos it builds hold the faces it says, and its check names every
face MaskTheFace masks that ours do not cover."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lab.cli_bench import faces_check, group_eyes, group_photo
from tests.conftest import SHARED_DATA as DATA


def test_a_face_masktheface_masks_outside_all_of_ours_is_named() -> None:
    theirs = {"a.jpg": [[100, 100, 200, 200], [400, 100, 500, 200]], "b.jpg": [[0, 0, 50, 50]]}
    ours = {"a.jpg": [[90, 80, 210, 215]], "b.jpg": []}
    check = faces_check(theirs, ours)
    assert check["missed"] == ["a.jpg (400, 100, 500, 200)", "b.jpg (0, 0, 50, 50)"]
    assert check["masktheface_faces"] == 3 and check["ours_faces"] == 1


def test_group_eyes_leave_room_for_everyone_and_stay_findable() -> None:
    few, many = group_eyes((1280, 960), 2), group_eyes((1280, 960), 24)
    assert many[1] < few[1] and many[0] >= 24


@pytest.mark.skipif(not DATA.exists(), reason="the face-keypoints data set is not here")
def test_a_group_photo_holds_its_faces_where_it_says() -> None:
    from training.data import load_splits

    samples = load_splits(DATA).val
    photo, faces = group_photo(samples, np.random.default_rng(1), (1600, 1200), 5, (30, 60))
    assert photo.shape == (1200, 1600, 3) and 1 <= len(faces) <= 5
    detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    boxes = detector.detectMultiScale(grey, 1.1, 5, minSize=(40, 40))
    for points in faces:  # every pasted face is a face where its points say
        cx, cy = points.mean(0)
        assert any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes)
