import numpy as np
import pytest

from training.data import Pack, build_pack, load_splits, person_of, read_image, read_labels


def test_person_is_the_file_name_less_its_frame_number():
    assert person_of("Abdel_Aziz_Al-Hakim_00.jpg") == "Abdel_Aziz_Al-Hakim"
    assert person_of("Fidel_Castro_Daiz-Balart_41.jpg") == "Fidel_Castro_Daiz-Balart"


def test_reader_parses_points_in_xy_order(tmp_path):
    csv = tmp_path / "labels.csv"
    values = np.arange(136, dtype=float)
    csv.write_text("header\nA_B_01.jpg," + ",".join(map(str, values)) + "\n")
    (sample,) = read_labels(csv)
    assert sample.path == tmp_path / "A_B_01.jpg"
    assert sample.points.shape == (68, 2)
    assert sample.points[1].tolist() == [2.0, 3.0]  # x1, y1
    assert sample.person == "A_B"


def test_reader_rejects_a_short_row(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("header\nA_01.jpg,1,2,3\n")
    with pytest.raises(ValueError, match="137 columns"):
        read_labels(csv)


def test_images_are_read_by_content_not_extension(tiny_dataset):
    # test/ holds PNG files named .jpg, as upstream's does
    path = next((tiny_dataset / "test").glob("*.jpg"))
    assert path.read_bytes()[:4] == b"\x89PNG"
    image = read_image(path)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def test_validation_people_are_never_in_training(tiny_dataset):
    splits = load_splits(tiny_dataset)
    held = {"Ed_Wood", "Flo_Rida"}
    assert not {s.person for s in splits.train} & held
    assert {s.person for s in splits.val} == held
    assert not {s.person for s in splits.test} & held
    # validation takes the held-back people's images from training/ and test/ alike
    assert {s.path.parent.name for s in splits.val} == {"training", "test"}


def test_pack_round_trip_keeps_points_on_their_pixels(tiny_dataset, tmp_path):
    splits = load_splits(tiny_dataset)
    pack = build_pack({"train": splits.train[:4]}, canvas=128, progress=False)
    for kind in (None, 95):
        pack.save(tmp_path / "p.npz", jpeg_quality=kind)
        back = Pack.load(tmp_path / "p.npz")
        assert back.images.shape == pack.images.shape
        np.testing.assert_allclose(back.points, pack.points)
        diff = np.abs(back.images.astype(int) - pack.images.astype(int)).mean()
        assert diff < (0.01 if kind is None else 3.0)
    # images larger than the canvas shrink, and their points with them
    sample = splits.train[0]
    h, w = read_image(sample.path).shape[:2]
    small = build_pack({"train": [sample]}, canvas=64, progress=False)
    scale = 64 / max(h, w)
    np.testing.assert_allclose(small.points[0], (sample.points + 0.5) * scale - 0.5, atol=1e-3)
    assert tuple(small.sizes[0]) == (round(h * scale), round(w * scale))


def test_a_pack_of_another_layout_is_refused_not_misread(tiny_dataset, tmp_path):
    """Version 1 packs held Haar-convention boxes where face boxes now are: same shape,
    other meaning. Such a file must say so instead of being read as face boxes."""
    from training.data import StalePack

    splits = load_splits(tiny_dataset)
    pack = build_pack({"train": splits.train[:2]}, canvas=128, progress=False)
    arrays = {f: getattr(pack, f) for f in Pack.__dataclass_fields__}
    arrays["detections"] = arrays.pop("face_boxes")
    np.savez(tmp_path / "old.npz", **arrays)  # as version 1 wrote it: no version field
    with pytest.raises(StalePack, match="version 1 pack"):
        Pack.load(tmp_path / "old.npz")


def test_a_pack_holds_the_products_face_box_with_its_angle(tmp_path):
    """A validation face carries the face box the product's search finds (MTCNN, angle
    included): the box facemask-eval reads the same face from."""
    import cv2
    from skimage.data import astronaut

    from core.detection.mtcnn import MtcnnFaceDetector
    from core.detection.turns import detect_with_turns
    from masks import catalog
    from tests.core.conftest import ASTRONAUT_MARKS, fit_template
    from training.data import Sample

    path = tmp_path / "Astro_Naut_00.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    points = fit_template(ASTRONAUT_MARKS, catalog.template().points)
    detector = MtcnnFaceDetector()
    pack = build_pack({"val": [Sample(path, points)]}, 512, detector, progress=False)
    (found,) = detect_with_turns(detector, read_image(path))
    b = found.box
    np.testing.assert_allclose(pack.face_boxes[0], [b.cx, b.cy, b.side, b.angle], rtol=1e-6)
    assert abs(pack.face_box(0).angle) > 1  # her eyes are not level: the angle is kept
    pack.save(tmp_path / "p.npz")
    np.testing.assert_array_equal(Pack.load(tmp_path / "p.npz").face_boxes, pack.face_boxes)
