"""lab.look_bars: the second look's bars are the largest round values that lose no real face."""

from __future__ import annotations

import re

import pytest

from core.keypoints.plausibility import FaceEvidence, FaceGate
from lab import look_bars
from lab.look_bars import RealFace, bars, faces_on, lost, round_down

NAN = float("nan")


@pytest.mark.parametrize(
    ("value", "bar"),
    [(0.00083, 0.0008), (0.0000015, 0.000001), (0.99, 0.9), (1.0, 1.0), (0.0008, 0.0008), (0, 0)],
)
def test_a_bar_is_the_value_cut_to_one_significant_digit(value, bar):
    assert round_down(value) == pytest.approx(bar)
    assert round_down(value) <= value


def _seen(look: float, look_sharp: float, face: float = 0.9) -> FaceEvidence:
    return FaceEvidence(0.9, 0.1, 0.05, 0.5, 30.0, face=face, look=look, look_sharp=look_sharp)


def test_a_face_keeps_the_best_look_of_the_detections_the_rest_of_the_gate_keeps():
    gate = FaceGate(min_face=0.5)
    seen = [_seen(0.2, 0.3), _seen(0.6, 0.1), _seen(0.99, 0.99, face=0.1), _seen(NAN, 0.5)]
    faces = faces_on("photo", seen, [[0, 1, 2], [0], [3], []], gate)
    # the third detection is dropped by the verifier anyway: it lifts nothing
    assert [(f.name, f.soft, f.sharp) for f in faces[:2]] == [
        ("photo#0", 0.6, 0.3), ("photo#1", 0.2, 0.3),
    ]  # fmt: skip
    # a detection the soft probe is not asked of keeps its face whatever the probe says
    assert faces[2].name == "photo#2" and faces[2].soft != faces[2].soft
    assert len(faces) == 3  # the fourth labelled face was never found


def test_the_bars_lose_no_face_and_a_higher_one_would():
    sets = {
        "groups": [RealFace("a", 0.0034, NAN), RealFace("b", NAN, NAN)],
        "damage": [RealFace("c", 0.5, 0.00083), RealFace("d", 0.9, 0.2)],
    }
    soft, sharp = bars(sets)
    assert (soft, sharp) == (pytest.approx(0.003), pytest.approx(0.0008))
    every = [f for faces in sets.values() for f in faces]
    assert lost(every, soft, sharp) == []
    assert [f.name for f in lost(every, 0.004, sharp)] == ["a"]
    assert [f.name for f in lost(every, soft, 0.0009)] == ["c"]


def test_the_rule_runs_on_a_tiny_set(tiny_dataset, capsys):
    look_bars.main(["--data", str(tiny_dataset), "--photos", "1", "--cli-photos", "1",
                    "--damage", "1"])  # fmt: skip
    out = capsys.readouterr().out
    for title in ("detector bench, clean", "detector bench, blurred", "command-line bench",
                  "damaged faces"):  # fmt: skip
        assert title + ":" in out
    rule = r"bars by the rule: min_look=\S+ min_look_sharp=\S+ \(faces lost at them: 0 of \d+\)"
    assert re.search(rule, out)
    assert "masks off a labelled face: " in out
