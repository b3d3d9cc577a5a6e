import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pix2pix_tf.data import DEMO_DIR, DataError, load_paired_dataset, scan_pairs

SMALL = dict(load_size=40, crop_size=32, multiple=32)


def noise(h, w, c=3, seed=0):
    shape = (h, w) if c == 1 else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def side_by_side(folder, n=4, h=36, w=36, same=False, ext="png"):
    for i in range(n):
        a = noise(h, w, seed=i)
        b = a if same else noise(h, w, seed=100 + i)
        save(folder / f"{i:03d}.{ext}", np.concatenate([a, b], axis=1))
    return folder


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_pairs_stay_aligned_through_jitter_and_mirror(tmp_path):
    side_by_side(tmp_path / "train", n=6, same=True)
    ds = load_paired_dataset(tmp_path, "train", batch_size=2, seed=3, **SMALL)
    for epoch in range(3):
        for x, y in batches(ds):
            assert x.shape == (2, 32, 32, 3) and x.dtype == np.float32
            np.testing.assert_array_equal(x, y)
    # the jitter really happens: the same file differs between epochs
    first = load_paired_dataset(tmp_path, "train", batch_size=6, seed=3, shuffle=False, **SMALL)
    assert not np.array_equal(batches(first)[0][0], batches(first)[0][0])


def test_mirroring_flips_input_and_target_together(tmp_path):
    a, b = noise(32, 32, seed=1), noise(32, 32, seed=2)
    save(tmp_path / "train" / "x.png", np.concatenate([a, b], axis=1))
    ds = load_paired_dataset(tmp_path, "train", preprocess="none", multiple=32, seed=0)
    a, b = a / 255.0 * 2 - 1, b / 255.0 * 2 - 1
    outcomes = set()
    for _ in range(12):
        (x, y), = batches(ds)
        if np.allclose(x[0], a, atol=1e-6):
            np.testing.assert_allclose(y[0], b, atol=1e-6)
            outcomes.add("kept")
        else:
            np.testing.assert_allclose(x[0], a[:, ::-1], atol=1e-6)
            np.testing.assert_allclose(y[0], b[:, ::-1], atol=1e-6)
            outcomes.add("mirrored")
    assert outcomes == {"kept", "mirrored"}


def test_two_folder_pairs_stay_aligned(tmp_path):
    for i in range(3):
        image = noise(36, 36, seed=i)
        save(tmp_path / "A" / f"p{i}.png", image)
        save(tmp_path / "B" / f"p{i}.png", image)
    for x, y in batches(load_paired_dataset(tmp_path, None, **SMALL)):
        np.testing.assert_array_equal(x, y)


def test_values_are_in_range_and_eval_is_deterministic(tmp_path):
    side_by_side(tmp_path / "test", n=3)
    ds = load_paired_dataset(tmp_path, "test", batch_size=3, **SMALL)
    (x, y), = batches(ds)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    np.testing.assert_array_equal(batches(ds)[0][0], x)  # no randomness outside training


def test_same_seed_same_batches_and_epoch_counter(tmp_path):
    side_by_side(tmp_path / "train", n=5)

    def run(seed, epoch=None):
        return batches(load_paired_dataset(tmp_path, "train", seed=seed, epoch=epoch, **SMALL))

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(u[0], v[0]) for u, v in zip(a, b))
    assert not all(np.array_equal(u[0], v[0]) for u, v in zip(a, c))
    # epoch e of a resumed run equals epoch e of an uninterrupted run
    counter = tf.Variable(0, dtype=tf.int64)
    ds = load_paired_dataset(tmp_path, "train", seed=1, epoch=counter, **SMALL)
    epochs = [batches(ds) for _ in range(3)]
    assert int(counter.numpy()) == 3
    resumed = tf.Variable(2, dtype=tf.int64)
    third = batches(load_paired_dataset(tmp_path, "train", seed=1, epoch=resumed, **SMALL))
    assert all(np.array_equal(u[0], v[0]) for u, v in zip(third, epochs[2]))
    assert not all(np.array_equal(u[0], v[0]) for u, v in zip(epochs[0], epochs[1]))


def test_sixteen_bit_png_keeps_its_precision(tmp_path):
    values = (np.arange(64 * 64, dtype=np.uint32) * 16 + 7).reshape(64, 64).astype(np.uint16)
    save(tmp_path / "A" / "x.png", values)
    save(tmp_path / "B" / "x.png", values)
    (x, _), = batches(load_paired_dataset(tmp_path, None, preprocess="none", multiple=32))
    assert x.shape == (1, 64, 64, 1)
    np.testing.assert_allclose(x[0, ..., 0], values / 65535.0 * 2 - 1, atol=1e-6)
    assert len(np.unique(x)) > 256  # more levels than 8 bits can hold


def test_channel_conversions_and_formats(tmp_path):
    gray = noise(32, 32, 1)
    save(tmp_path / "A" / "c.bmp", gray)
    save(tmp_path / "B" / "c.jpg", noise(32, 32, 3), quality=95)
    ds = load_paired_dataset(tmp_path, None, preprocess="none", multiple=32)
    (x, y), = batches(ds)
    assert x.shape[-1] == 1 and y.shape[-1] == 3  # colourisation 1 -> 3
    np.testing.assert_allclose(x[0, ..., 0], gray / 255.0 * 2 - 1, atol=1e-6)
    (x, y), = batches(load_paired_dataset(tmp_path, None, direction="BtoA", preprocess="none",
                                          multiple=32, output_channels=3))
    # BtoA: the RGB image is the input; output_channels=3 turns the gray target into RGB
    assert x.shape[-1] == 3 and y.shape[-1] == 3
    np.testing.assert_allclose(y[0, ..., 0], y[0, ..., 2])
    (x, y), = batches(load_paired_dataset(tmp_path, None, direction="BtoA", preprocess="none",
                                          multiple=32))
    assert x.shape[-1] == 3 and y.shape[-1] == 1  # 3 -> 1, e.g. photo -> mask
    save(tmp_path / "rgba" / "A" / "r.png", noise(32, 32, 4))
    save(tmp_path / "rgba" / "B" / "r.png", noise(32, 32, 4))
    (x, _), = batches(load_paired_dataset(tmp_path / "rgba", None, preprocess="none", multiple=32))
    assert x.shape[-1] == 4
    (x, _), = batches(load_paired_dataset(tmp_path / "rgba", None, preprocess="none", multiple=32,
                                          input_channels=3))
    assert x.shape[-1] == 3


def test_preprocess_modes(tmp_path):
    side_by_side(tmp_path / "train", n=2, h=40, w=72)
    shapes = {}
    for mode in ("resize_and_crop", "crop", "scale_width", "none"):
        ds = load_paired_dataset(tmp_path, "train", preprocess=mode, load_size=64, crop_size=32,
                                 multiple=32)
        shapes[mode] = batches(ds)[0][0].shape
    assert shapes == {"resize_and_crop": (1, 32, 32, 3), "crop": (1, 32, 32, 3),
                      "scale_width": (1, 32, 64, 3), "none": (1, 64, 96, 3)}


def test_arrays_source(tmp_path):
    inputs = noise(40, 40, 3)[None].repeat(3, 0)
    ds = load_paired_dataset((inputs, inputs), "train", batch_size=3, **SMALL)
    (x, y), = batches(ds)
    np.testing.assert_array_equal(x, y)
    with pytest.raises(DataError, match=r"must be in \[-1, 1\].*x / 127.5 - 1"):
        load_paired_dataset((inputs.astype("float32"), inputs.astype("float32")))
    with pytest.raises(DataError, match="differ in length"):
        load_paired_dataset((inputs, inputs[:2]))


def test_demo_dataset_is_bundled():
    scan = scan_pairs(DEMO_DIR, "train")
    assert len(scan.pairs) >= 100 and not scan.problems
    assert {p.size for p in scan.pairs} == {(256, 256)}
    test = scan_pairs(DEMO_DIR, "test")
    assert len(test.pairs) >= 5
    assert not {p.name for p in scan.pairs} & {p.name for p in test.pairs}
    ds = load_paired_dataset("demo", "test", batch_size=4)
    x, y = next(iter(ds))
    assert x.shape == (4, 256, 256, 3) and y.shape == (4, 256, 256, 3)


# ------------------------------------------------------------------------------- bad input
@pytest.fixture
def good_folder(tmp_path):
    return side_by_side(tmp_path / "train", n=3, ext="jpg").parent


def expect_problem(root, pattern, split="train", **kwargs):
    with pytest.raises(DataError, match=pattern) as info:
        load_paired_dataset(root, split, **{**SMALL, **kwargs})
    return info.value


def test_corrupt_file(good_folder):
    (good_folder / "train" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    error = expect_problem(good_folder, r"bad\.jpg: not a readable image")
    assert "on_error='skip'" in str(error)


def test_truncated_file(good_folder):
    data = (good_folder / "train" / "000.jpg").read_bytes()
    (good_folder / "train" / "cut.jpg").write_bytes(data[: len(data) // 2])
    expect_problem(good_folder, r"cut\.jpg: truncated JPEG")


def test_zero_byte_file(good_folder):
    (good_folder / "train" / "empty.png").write_bytes(b"")
    expect_problem(good_folder, r"empty\.png: empty file \(0 bytes\)")


def test_non_image_with_image_extension(good_folder):
    (good_folder / "train" / "notes.png").write_text("this is not a picture")
    expect_problem(good_folder, r"notes\.png: not a readable image")


def test_odd_width_side_by_side(good_folder):
    save(good_folder / "train" / "odd.png", noise(36, 71))
    expect_problem(good_folder, r"odd\.png: odd width 71")


def test_a_without_b_and_size_mismatch(tmp_path):
    save(tmp_path / "A" / "lonely.png", noise(36, 36))
    save(tmp_path / "A" / "big.png", noise(36, 36))
    save(tmp_path / "B" / "big.png", noise(40, 36))
    save(tmp_path / "A" / "ok.png", noise(36, 36))
    save(tmp_path / "B" / "ok.png", noise(36, 36))
    error = expect_problem(tmp_path, r"lonely\.png: has no partner", split=None)
    assert any("big.png" in str(p) and "pixel-aligned" in m for p, m in error.problems)
    with pytest.warns(UserWarning, match="Skipping 2 bad file"):
        ds = load_paired_dataset(tmp_path, None, on_error="skip", **SMALL)
    assert len(batches(ds)) == 1


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "README.txt").write_text("hi")
    expect_problem(tmp_path, r"No usable image pairs.*Ignored 1 non-image")
    expect_problem(tmp_path / "nowhere", r"nowhere: no such folder")
    expect_problem(tmp_path, r"has no 'val' split \(found: train\)", split="val")


def test_image_smaller_than_the_crop(good_folder):
    save(good_folder / "train" / "tiny.png", noise(20, 40))
    expect_problem(good_folder, r"tiny\.png: is 20x20 .*smaller than the 32x32 crop",
                   preprocess="crop")


def test_skip_mode_counts_and_keeps_the_rest(good_folder):
    (good_folder / "train" / "empty.png").write_bytes(b"")
    (good_folder / "train" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_paired_dataset(good_folder, "train", on_error="skip", **SMALL)
    assert any("Skipping 2 bad file" in str(w.message) for w in caught)
    assert sum(len(x) for x, _ in batches(ds)) == 3
