"""FaceMasker.apply_many_files: the command line's batch, in a notebook."""

from __future__ import annotations

import io

from PIL import Image

from core.api import FaceMasker

from .conftest import KnownFacePredictor


def test_many_files_in_order_a_bad_one_in_its_place(tmp_path, astronaut, astronaut_points):
    good = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(good)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"not a photo")
    masker = FaceMasker(predictor=KnownFacePredictor([astronaut_points]))
    results = list(
        masker.apply_many_files([good, bad, good], "villain", photo_format="png", labels=True)
    )
    assert [r.status for r in results] == ["done", "failed", "done"]
    assert results[1].error == "not_an_image" and results[1].outputs == []
    out = results[0].outputs[0]
    assert out.masks == (7,) and Image.open(io.BytesIO(out.data)).format == "PNG"
    assert out.labels[0]["mask"] == 7 and len(out.labels[0]["polygon"]) > 4
    seven = next(masker.apply_many_files([good], "all"))
    assert [o.tag for o in seven.outputs] == [str(i) for i in range(1, 8)]
