"""lab.false_masks: the false-mask benchmark runs, counts what it says, and reads its sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.keypoints.plausibility import FaceEvidence, FaceGate
from core.keypoints.verifier import VERIFIER_ONNX
from core.results import Face
from core.weightfiles import WEIGHTS_DIR
from lab import false_masks
from lab.false_masks import Observed, score, turn, turn_points, variants


def _evidence(score: float = 0.99, skin: float = 0.5) -> FaceEvidence:
    return FaceEvidence(score, 0.15, 0.05, skin, 30.0)


def test_the_package_sources_are_many_and_face_free():
    sources = dict(false_masks.package_sources())
    assert len(sources) >= 20  # scikit-image's and matplotlib's, offline
    assert not any("astronaut" in name or "camera.png" in name for name in sources)
    assert not any("grace_hopper" in name for name in sources)
    for image in sources.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_a_source_makes_every_variant_once():
    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    made = dict(variants(image, np.random.default_rng(0)))
    assert len(made) == false_masks.VARIANTS
    assert made["turn90"].shape[:2] == made["as-is"].shape[1::-1]
    assert max(made["large"].shape[:2]) == 1280 and max(made["small"].shape[:2]) == 320


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_points_follow_their_turned_photo(degrees):
    image = np.zeros((30, 50, 3), np.uint8)
    image[7, 11] = 255
    turned = turn(image, degrees)
    (x, y) = turn_points(np.array([[11.0, 7.0]]), image.shape, degrees)[0]
    assert turned[int(y), int(x)].max() == 255


def test_score_counts_false_masks_per_100_photos_with_and_without_a_gate():
    gate = FaceGate(sure_score=0.9, min_skin_unsure=0.2)
    photos = [
        Observed("dog", "no-face", [_evidence(0.5, 0.0), _evidence(0.95, 0.0)], [False, False]),
        Observed("sky", "no-face", [], []),
        Observed("turned", "turned-portrait", [_evidence(), _evidence(0.5, 0.0)], [True, False]),
    ]
    before, after = score(None, photos, [], []), score(gate, photos, [], [])
    assert before["no-face"]["false_masks_per_100"] == 100.0  # two masks on two photos
    assert after["no-face"]["false_masks_per_100"] == 50.0  # the unsure fur is refused
    assert before["turned-portrait"]["false_masks_per_100"] == 100.0
    assert after["turned-portrait"]["false_masks_per_100"] == 0.0
    assert after["turned-portrait"]["face_masked"] == 1.0


def test_the_benchmark_runs_on_a_tiny_set_and_replays_what_it_saw(tiny_dataset, capsys, tmp_path):
    false_masks.main(
        ["--limit", "3", "--data", str(tiny_dataset), "--hair", "1", "--turned", "1",
         "--group-photos", "1", "--damage", "1", "--json", "--save-run", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["before"]["no-face"]["photos"] == 3
    assert result["before"]["turned-portrait"]["photos"] == 1
    assert set(result["after"]) >= {"no-face", "group", "damage", "faces_lost_to_the_gate"}
    assert "false masks per 100 photos" in out
    # the recorded run, judged again by the shipped verifier, scores the same
    verifier = str(WEIGHTS_DIR / VERIFIER_ONNX)
    false_masks.main(["--replay", str(tmp_path), "--verifier", verifier, "--json"])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["after"] == result["after"] and again["before"] == result["before"]
    # a gate to choose on: the training sources alone, no hair or turned portraits; a gate
    # that keeps nothing masks nothing
    false_masks.main(
        ["--replay", str(tmp_path), "--sources", "train", "--gate", "max_spread=0", "--json"]
    )
    strict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert strict["gate"].startswith("FaceGate(max_spread=0.0,")
    assert set(strict["after"]) >= {"no-face", "group", "damage"}
    assert "hair" not in strict["after"] and "turned-portrait" not in strict["after"]
    assert strict["after"]["no-face"]["false_masks_per_100"] == 0
    with pytest.raises(SystemExit):
        false_masks.main(["--replay", str(tmp_path), "--gate", "max_sprad=1"])


def test_the_verifier_trains_on_none_of_the_held_out_sources():
    names = [name for name, _ in false_masks.package_sources()]
    held_out = [n for n in names if false_masks.source_split(n) == "held-out"]
    assert set(names) - set(held_out) <= false_masks.TRAIN_SOURCES
    assert "skimage/chelsea.png" in held_out and "skimage/coffee.png" not in held_out
    assert false_masks.source_split("scipy/face.dat") == "train"  # not a benchmark source
    assert false_masks.held_out_photo("skimage/chelsea.png/turn90")


def test_hair_close_ups_hold_no_face(shared_data):
    from training.data import load_splits

    photos = false_masks.hair_photos(load_splits(shared_data).val, 5)
    assert len(photos) == 5
    for photo in photos:
        assert photo.kind == "hair" and photo.image.shape[1] == 480


def test_the_close_ups_left_out_for_another_face_are_in_the_hair_set(shared_data):
    """The close-ups checked by eye for another person's face (not scored) name photos the
    benchmark makes: a stale name would leave out nothing."""
    from training.data import load_splits

    names = {p.name for p in false_masks.hair_photos(load_splits(shared_data).val, 100)}
    assert false_masks.ANOTHER_FACE <= names


def test_evidence_follows_the_faces_order_where_a_borderline_face_came_first():
    """find_faces lists sure faces first, then borderline ones that are no sure face's
    duplicate; the gate saw them in the detector's order."""

    def face(eyes: float) -> Face:
        points = np.zeros((68, 2), np.float32)
        points[45, 0] = eyes
        return Face((0.0, 0.0, 1.0, 1.0), points)

    def seen(eyes: float, unsure: bool) -> FaceEvidence:
        return FaceEvidence(0.9, 0.1, 0.05, 0.5, eyes, unsure=unsure)

    detector_order = [seen(11, True), seen(20, False), seen(30, True), seen(40, False)]
    # the borderline face of 11 px read the 20-px face's points and was left out
    faces = [face(20), face(40), face(30)]
    ordered = false_masks.in_face_order(faces, detector_order)
    assert [e.eyes_px for e in ordered] == [20, 40, 30]
    assert [e.unsure for e in ordered] == [False, False, True]
    # a sure face that read a surer one's face was left out too (core.api.one_reading_each)
    ordered = false_masks.in_face_order([face(40)], [seen(20, False), seen(40, False)])
    assert [e.eyes_px for e in ordered] == [40]


def test_evidence_is_paired_by_the_points_the_gate_judged_not_the_second_look():
    """A face the model took a second look at is masked on that look's points and judged
    on its first look's: the pairing follows the judged points."""

    def points(eyes: float) -> np.ndarray:
        out = np.zeros((68, 2), np.float32)
        out[45, 0] = eyes
        return out

    detector_order = [
        FaceEvidence(0.9, 0.1, 0.05, 0.5, 30, unsure=True),
        FaceEvidence(0.9, 0.1, 0.05, 0.5, 20, unsure=False),
        FaceEvidence(0.9, 0.1, 0.05, 0.5, 25, unsure=True),
    ]
    # the borderline faces, looked at again, read 31 and 26 px; judged on 30 and 25
    faces = [Face((0, 0, 1, 1), points(e)) for e in (20, 31, 26)]
    judged = [points(e) for e in (20, 30, 25)]
    ordered = false_masks.in_face_order(faces, detector_order, judged)
    assert [e.eyes_px for e in ordered] == [20, 30, 25]
    with pytest.raises(StopIteration):  # paired by the faces' own points: none matches
        false_masks.in_face_order(faces, detector_order)


def test_observe_gives_each_face_its_evidence_and_judged_points_and_unpatches():
    from skimage import data

    from core import api
    from core.api import FaceMasker
    from core.keypoints.plausibility import outer_eye_distance, readings

    masker = FaceMasker()
    faces, seen, judged = false_masks.observe(masker, data.astronaut())
    assert len(faces) == len(seen) == len(judged) == 1
    assert seen[0].eyes_px == outer_eye_distance(judged[0])
    assert api.readings is readings and masker.gate is not None


def test_a_replayed_gate_keeps_one_reading_of_a_face_as_the_product_does():
    """Two recorded readings of one face: the gate first, then the one the model doubts
    less among those it keeps; a reading elsewhere and a borderline one are not touched; a
    run recorded without point boxes keeps every reading the gate keeps."""

    class ByVerifier:
        def keeps(self, e: FaceEvidence) -> bool:
            return e.face >= 0.5

    def seen(spread: float, face: float, unsure: bool = False) -> FaceEvidence:
        return FaceEvidence(0.9, spread, 0.05, 0.5, 30.0, face=face, unsure=unsure)

    here, again, there = [0, 0, 100, 100, 30], [5, 5, 105, 105, 31], [300, 0, 400, 100, 30]
    o = false_masks.Observed(
        "p", "no-face", [seen(0.16, 1.0), seen(0.15, 1.0), seen(0.2, 1.0), seen(0.1, 1.0, True)],
        [True, True, False, True], extents=[here, again, there, again],
    )  # fmt: skip
    assert false_masks.kept(ByVerifier(), o) == [False, True, True, True]
    assert false_masks.kept(None, o) == [False, True, True, True]
    # the reading the model doubts less is not a face to the gate: the other one is kept
    o.evidence[1] = seen(0.15, 0.0)
    assert false_masks.kept(ByVerifier(), o) == [True, False, True, True]
    o.extents = []
    o.evidence[1] = seen(0.15, 1.0)
    assert false_masks.kept(ByVerifier(), o) == [True, True, True, True]
