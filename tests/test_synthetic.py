import numpy as np
import pytest
from PIL import Image

from pix2pix_tf.data import DataError, load_paired_dataset
from pix2pix_tf.data.synthetic import make_synthetic_pairs

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry"):
        Image.fromarray(getattr(skimage_data, name)()).save(folder / f"{name}.jpg", quality=95)
    return folder


def halves(path):
    pair = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    width = pair.shape[1] // 2
    return pair[:, :width], pair[:, width:]


@pytest.mark.parametrize("kind", ["edges", "grayscale", "lowres", "masked"])
def test_each_kind_makes_loadable_pairs(photos, tmp_path, kind):
    counts = make_synthetic_pairs(photos, tmp_path, kind, size=64, verbose=False)
    assert counts == {"train": 4, "test": 1}
    files = sorted((tmp_path / "train").glob("*.png"))
    for path in files:
        a, b = halves(path)
        if kind == "edges":
            assert set(np.unique(a)) <= {0.0, 255.0} and 0.02 < (a == 0).mean() < 0.3
        elif kind == "grayscale":
            assert np.array_equal(a[..., 0], a[..., 2]) and not np.array_equal(b[..., 0], b[..., 2])
        elif kind == "lowres":
            # less high-frequency energy than the sharp photo
            assert np.abs(np.diff(a, axis=1)).mean() < np.abs(np.diff(b, axis=1)).mean()
        elif kind == "masked":
            differs = np.any(a != b, axis=-1)
            assert 0.02 < differs.mean() < 0.8
            assert np.all(a[differs] == 127)
    x, y = next(iter(load_paired_dataset(tmp_path, "train", batch_size=4, crop_size=64,
                                         load_size=72, multiple=64,
                                         input_channels=1 if kind == "grayscale" else None)))
    assert x.shape[-1] == (1 if kind == "grayscale" else 3) and y.shape == (4, 64, 64, 3)


def test_train_and_test_photos_do_not_overlap(photos, tmp_path):
    make_synthetic_pairs(photos, tmp_path, "edges", size=32, test_fraction=0.4, verbose=False)
    train = {p.name for p in (tmp_path / "train").iterdir()}
    test = {p.name for p in (tmp_path / "test").iterdir()}
    assert len(test) == 2 and not train & test


def test_bad_photo_folder(tmp_path):
    with pytest.raises(DataError, match="no JPEG/PNG/BMP photos"):
        (tmp_path / "empty").mkdir()
        make_synthetic_pairs(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"x\.jpg: empty file"):
        make_synthetic_pairs(tmp_path / "bad", tmp_path / "out")
