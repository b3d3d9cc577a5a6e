"""The edit registry behind instruction editing: each target does what its phrasings say."""

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import EDITS, register_edit
from pix2pix_tf.data.sources import DEMO_DIR
from pix2pix_tf.tasks.instruct.edits import edit_of


@pytest.fixture(scope="module")
def photo():
    """A real 256x256 satellite tile from the demo data, in [0, 1]."""
    path = sorted((DEMO_DIR / "test").glob("*.jpg"))[0]
    image = tf.io.decode_jpeg(tf.io.read_file(str(path))).numpy()[:, 256:]
    return image.astype("float32") / 255.0


def high_frequency(image):
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def test_the_eight_edits_are_registered_with_disjoint_phrasings():
    assert set(EDITS) == {"grayscale", "invert", "brighter", "darker", "blur", "edge_sketch",
                          "sepia", "hue_180"}
    seen = {}
    for edit in EDITS.values():
        assert len(edit.phrasings) >= 8 and len(edit.held_out) >= 3 and edit.mirror_safe
        for phrase in edit.phrasings + edit.held_out:
            assert phrase.lower() not in seen, (phrase, seen.get(phrase.lower()))
            seen[phrase.lower()] = edit.name
            assert edit_of(f"  {phrase.upper()} ") is edit
    assert edit_of("make it purple") is None


def test_each_target_does_what_it_says(photo):
    out = {name: np.asarray(edit.function(photo)) for name, edit in EDITS.items()}
    for name, image in out.items():
        assert image.shape == photo.shape and image.dtype == np.float32, name
        assert image.min() >= -1e-6 and image.max() <= 1 + 1e-6, name
    gray = out["grayscale"]
    assert np.allclose(gray[..., 0], gray[..., 1]) and np.allclose(gray[..., 1], gray[..., 2])
    assert np.allclose(np.asarray(EDITS["invert"].function(out["invert"])), photo, atol=1e-6)
    assert out["brighter"].mean() > photo.mean() + 0.1 > photo.mean() > out["darker"].mean() + 0.1
    assert high_frequency(out["blur"]) < 0.5 * high_frequency(photo)
    sketch = out["edge_sketch"]
    assert np.median(sketch) > 0.8 and sketch.min() < 0.3  # mostly paper, some dark lines
    flat = np.full((8, 8, 3), 0.5, np.float32)
    assert np.asarray(EDITS["edge_sketch"].function(flat)).min() > 0.99  # no edges, no lines
    toned = np.asarray(EDITS["sepia"].function(flat))
    assert toned[..., 0].mean() > toned[..., 1].mean() > toned[..., 2].mean()  # warm brown
    twice = np.asarray(EDITS["hue_180"].function(out["hue_180"]))
    assert np.abs(twice - photo).mean() < 0.01  # half a turn twice is a whole turn
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    assert np.allclose(np.asarray(EDITS["hue_180"].function(red)), [0.0, 1.0, 1.0], atol=1e-5)  # cyan
    # the eight targets are eight different images
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(out[a] - out[b]).mean() > 0.02, (a, b)


def test_targets_run_in_tf_data_on_batches(photo):
    batch = np.stack([photo[:64, :64], photo[64:128, :64]])
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(2).map(EDITS["blur"].target)
    (blurred,) = list(dataset)
    assert blurred.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(blurred[1], np.asarray(EDITS["blur"].function(batch[1])), atol=1e-6)


def test_registering_an_edit_checks_its_phrasings():
    def mirrored(image):
        return tf.reverse(tf.convert_to_tensor(image), axis=[-2])

    with pytest.raises(ValueError, match="already names edit 'blur'"):
        register_edit("mirror", mirrored, ["blur it"], ["mirror it"])
    with pytest.raises(ValueError, match="repeats a phrasing"):
        register_edit("mirror", mirrored, ["mirror it"], ["mirror it"])
    try:
        edit = register_edit("mirror_left", mirrored, ["put the left side on the right"],
                             ["swap left and right"], mirror_safe=False)
        assert EDITS["mirror_left"] is edit and not edit.mirror_safe
    finally:
        EDITS.pop("mirror_left", None)
