"""The second look's bars by the rule: the largest round values that lose no real face.

``FaceGate.min_look`` (the soft probe) and ``min_look_sharp`` (the sharp probe, asked only of
sharp crops) drop what the verifier's second look (``training.look``) is sure is not a face.
Each bar is chosen on the validation people only, never on the false-mask benchmark: the
largest value with one significant digit (0.0008, 0.000001) that loses no labelled face of

* the detector bench's group photos (``facemask-detector-bench``: 40 photos, seed 0) under
  each of its face conditions (clean, blurred, in sunglasses, mirrored);
* the command-line bench's 30 group photos (``lab.cli_bench.build_groups``, JPEG at 90);
* the 1,100 damaged faces (50 images x 22 conditions of ``training.damage``), read back from a
  recorded false-mask run (``python -m lab.false_masks ... --save-run R``) or made anew.

A face counts where the product masks it with the rest of the gate as shipped (the look off);
a labelled face with several detections on it is lost only if all of them are dropped. The
look is asked only where the product asks it (not of a sure detection: ``SURE_SCORE``).
What the product masks off the labelled faces is listed where the bars would drop it (``--dump``
writes each one's surroundings): a second person in the background of a pasted photo is a face
too, and the bars must go under it; the shuffled tiles of the background are not.

    python -m lab.false_masks --wheels DIR --data $D --save-run R     # the recorded run
    python -m lab.look_bars --data $D --run R --look .cache/verifier/look.onnx --dump DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core import imageio
from core.api import FaceMasker
from core.keypoints.verifier import FaceVerifier
from lab.cli_bench import group_photos
from lab.detector_bench import FACE_CONDITIONS, bench_photos
from lab.false_masks import load_run, observe, observe_damage, on_labelled, rejudged
from training.data import load_splits


def round_down(value: float) -> float:
    """The largest value with one significant digit not above ``value`` (0.00083 -> 0.0008)."""
    if not value > 0:
        return 0.0
    unit = 10.0 ** math.floor(math.log10(value))
    return math.floor(value / unit + 1e-9) * unit


@dataclasses.dataclass
class RealFace:
    """One labelled face the product masks: the best look of the detections on it."""

    name: str  # "group/blurred/12#3"; off a labelled face "group/blurred/12@5"
    soft: float  # the soft probe's (NaN: the look was not asked)
    sharp: float  # the sharp probe's (NaN: not asked, or no crop sharp)
    patch: np.ndarray | None = None  # off a labelled face: the photo around it, to look at


def best(looks: list[float]) -> float:
    return float("nan") if any(np.isnan(v) for v in looks) else float(max(looks))


def faces_on(name: str, evidence, hits_per_face, gate) -> list[RealFace]:
    """The real faces of one photo: per labelled face, the detections on it the gate without
    the look keeps, their best looks."""
    out = []
    for n, hits in enumerate(hits_per_face):
        kept = [evidence[i] for i in hits if gate.keeps(evidence[i])]
        if kept:
            # a face survives a probe's bar through any detection that probe is not asked of
            soft, sharp = ([getattr(e, probe) for e in kept] for probe in ("look", "look_sharp"))
            out.append(RealFace(f"{name}#{n}", best(soft), best(sharp)))
    return out


def group_faces(masker, samples, photos: int, seed: int, gate, off: list):
    """Per face condition of the detector bench, its group photos' real faces (what is
    masked off them goes to ``off``)."""
    out = {}
    for condition in FACE_CONDITIONS:
        made = bench_photos(samples, photos, seed, condition)
        faces = []
        for k, (image, labelled, _) in enumerate(
            tqdm(made, total=photos, desc=f"group photos, {condition}", mininterval=10)
        ):
            faces += judged(f"group/{condition}/{k}", masker, image, labelled, gate, off)
        out[f"detector bench, {condition}"] = faces
    return out


def cli_faces(masker, samples, photos: int, seed: int, gate, off: list):
    """The command-line bench's group photos' (as ``build_groups`` writes them) real faces."""
    made = group_photos(samples, photos, seed)
    faces = []
    for k, (photo, labelled) in enumerate(
        tqdm(made, total=photos, desc="command-line bench photos", mininterval=10)
    ):
        # the file build_groups writes, read as `facemask apply` reads it
        ok, data = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        image = imageio.decode(data.tobytes()).rgb
        faces += judged(f"cli/{k}", masker, image, labelled, gate, off)
    return faces


def judged(name, masker, image, labelled, gate, off: list) -> list[RealFace]:
    """The labelled faces of one photo, as ``masker`` (its verifier's look the one under
    test) reads them; what the gate without the look keeps off them (a second person in a
    pasted crop's background, or no face) goes to ``off``."""
    found, evidence, _ = observe(masker, image)
    hits = [[i for i, f in enumerate(found) if on_labelled(f, [pts])] for pts in labelled]
    on = {i for h in hits for i in h}
    for i, (face, e) in enumerate(zip(found, evidence, strict=True)):
        if i not in on and gate.keeps(e):
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            pad = (x1 - x0) // 2
            patch = image[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad].copy()
            off.append(RealFace(f"{name}@{i}", e.look, e.look_sharp, patch))
    return faces_on(name, evidence, hits, gate)


def damage_faces(damage, gate) -> list[RealFace]:
    """The damaged images' real faces (one labelled face each)."""
    faces = []
    for o in damage:
        on = [i for i, f in enumerate(o.on_face) if f]
        faces += faces_on(o.photo, o.evidence, [on], gate)
    return faces


def lowest(faces: list[RealFace], probe: str) -> RealFace | None:
    asked = [f for f in faces if not np.isnan(getattr(f, probe))]
    return min(asked, key=lambda f: getattr(f, probe)) if asked else None


def bars(sets: dict[str, list[RealFace]]) -> tuple[float, float]:
    every = [f for faces in sets.values() for f in faces]
    soft, sharp = lowest(every, "soft"), lowest(every, "sharp")
    return (round_down(soft.soft) if soft else 0.0, round_down(sharp.sharp) if sharp else 0.0)


def lost(faces: list[RealFace], min_look: float, min_look_sharp: float) -> list[RealFace]:
    return [
        f for f in faces
        if (not np.isnan(f.soft) and f.soft < min_look)
        or (not np.isnan(f.sharp) and f.sharp < min_look_sharp)
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.look_bars", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument("--look", type=Path, help="the second look's .onnx (default: the shipped one)")
    p.add_argument("--run", type=Path, help="a recorded false-mask run: its damaged faces")
    p.add_argument("--photos", type=int, default=40, help="detector bench group photos")
    p.add_argument("--cli-photos", type=int, default=30, help="command-line bench group photos")
    p.add_argument("--damage", type=int, default=50, help="damaged images, without --run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dump", type=Path, help="write the masks off a labelled face below the bars here",
    )  # fmt: skip
    args = p.parse_args(argv)
    cv2.setNumThreads(2)
    verifier = FaceVerifier.load(look=args.look or True)
    masker = FaceMasker(verifier=verifier)
    # the rest of the gate as shipped: a face it drops anyway binds no bar
    gate = dataclasses.replace(masker.gate, min_look=0.0, min_look_sharp=0.0)
    samples = load_splits(args.data).val
    off: list[RealFace] = []
    sets = group_faces(masker, samples, args.photos, args.seed, gate, off)
    sets["command-line bench"] = cli_faces(masker, samples, args.cli_photos, args.seed, gate, off)
    if args.run:
        _, _, damage = load_run(args.run)
    else:
        damage = observe_damage(masker, samples, args.damage, args.seed)
    _, _, damage = rejudged(verifier, [], [], damage)
    sets["damaged faces"] = damage_faces(damage, gate)
    for title, faces in sets.items():
        soft, sharp = lowest(faces, "soft"), lowest(faces, "sharp")
        asked = sum(not np.isnan(f.soft) for f in faces)
        print(
            f"{title}: {len(faces)} faces masked, the look asked of {asked}; lowest soft "
            + (f"{soft.soft:.2g} ({soft.name})" if soft else "-")
            + "; lowest sharp "
            + (f"{sharp.sharp:.2g} ({sharp.name})" if sharp else "-")
        )
    min_look, min_look_sharp = bars(sets)
    every = [f for faces in sets.values() for f in faces]
    dropped = lost(every, min_look, min_look_sharp)
    print(f"bars by the rule: min_look={min_look:g} min_look_sharp={min_look_sharp:g} "
          f"(faces lost at them: {len(dropped)} of {len(every)})")  # fmt: skip
    # a mask off a labelled face is a second person in a pasted crop's background or no
    # face (the shuffled tiles of the background): below the bars, somebody looks at it
    below = sorted(lost(off, min_look, min_look_sharp), key=lambda f: f.name)
    ask = " (look at each: is it a face? then the bars must go under it)" if below else ""
    print(f"masks off a labelled face: {len(off)}; below the bars: {len(below)}{ask}")
    for f in below:
        print(f"  {f.name}: soft {f.soft:.2g}, sharp {f.sharp:.2g}")
        if args.dump is not None and f.patch is not None and f.patch.size:
            args.dump.mkdir(parents=True, exist_ok=True)
            file = args.dump / (f.name.replace("/", "-").replace("@", "-at") + ".png")
            cv2.imwrite(str(file), f.patch[..., ::-1])


if __name__ == "__main__":
    main()
