"""The built-in text encoder's spelling (character n-grams): words no training instruction used
still mean something, saved models and exports carry the n-gram table."""

import keras
import numpy as np
import pytest
from helpers import photos, tiny_editor

from pix2pix_tf.config import TrainConfig
from pix2pix_tf.data import pair_pipeline
from pix2pix_tf.model import default_optimizer
from pix2pix_tf.tasks.instruct.data import EditsSource
from pix2pix_tf.tasks.instruct.edits import EDITS
from pix2pix_tf.tasks.instruct.text import (
    build_vocabulary,
    char_ngrams,
    english_words,
    spelling_options,
    subword_table,
    word_list,
)

PHRASES = [p for e in EDITS.values() for p in e.phrasings]
BUCKETS = 1 << 16


def unrelated_word(candidates=("wombat", "fjord", "zephyr", "jukebox", "kwyjibo")):
    """A word none of whose n-gram buckets a training phrasing uses."""
    trained = set(subword_table(build_vocabulary(PHRASES), BUCKETS).ravel())
    for word in candidates:
        if not (set(subword_table([word], BUCKETS)[2]) - {0}) & trained:
            return word
    raise AssertionError("every candidate shares a bucket with the training words")


#: 'darkest' is in no training phrasing ('darker', 'dark', 'darken' are); the other word shares
#: no n-gram with them.
TRAINED_WORDS = {w for p in PHRASES for w in p.lower().replace(",", " ").split()}
EXTRA = ["darkest", unrelated_word()]
assert not set(EXTRA) & TRAINED_WORDS
VOCAB = build_vocabulary(PHRASES, extra=EXTRA)
L = 12


def tiny_model(subwords=True, seed=0):
    return tiny_editor(VOCAB, L, seed=seed, buckets=BUCKETS if subwords else 0)


def word_vectors(model, words):
    """The generator's per-word vectors of single-word instructions."""
    layer = "text_subwords" if model.subword_buckets else "text_embedding"
    probe = keras.Model(model.generator.inputs, model.generator.get_layer(layer).output)
    tokens = model.vocabulary.encode(words)
    images = np.zeros((len(words), 8, 8, 3), np.float32)
    return probe({"image": images, "tokens": tokens}).numpy()[:, 0]


def fit(model, epochs=4):
    keras.utils.set_random_seed(0)
    data = pair_pipeline(EditsSource(photos(8), size=32), batch_size=16, preprocess="crop",
                         crop_size=16, multiple=8)
    model.compile(default_optimizer(2e-3), default_optimizer(2e-3))
    model.fit(data, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained():
    return fit(tiny_model())


def test_ngrams_table_and_vocabulary():
    assert char_ngrams("dim") == ["<dim>", "<di", "dim", "im>", "<dim", "dim>"]
    assert char_ngrams("dimmer")[:2] == ["<dimmer>", "<di"]  # the whole word comes first
    table = subword_table(["dimmer", "dim", "wombat"], BUCKETS)
    assert table.shape[0] == 5 and not table[:2].any()  # padding, unknown: no n-grams
    dimmer, dim = (set(row[row > 0]) for row in table[2:4])
    assert len(dimmer & dim) == 3  # '<di', 'dim', '<dim'
    np.testing.assert_array_equal(table, subword_table(["dimmer", "dim", "wombat"], BUCKETS))
    # training words first (by count), then the extra words they lack, in the list's order
    assert build_vocabulary(["make it dimmer", "make it"], extra=["it", "dim"]) == [
        "it", "make", "dimmer", "dim"]
    english = english_words()
    assert len(english) == 30000 and english[0] == "the" and "hues" in english
    assert word_list("none") == []
    assert spelling_options(VOCAB, 0) == {}  # whole words: no table
    with pytest.raises(ValueError, match="english"):
        word_list("klingon")
    with pytest.raises(ValueError, match="subword_buckets must be >= 0"):
        TrainConfig.create(task="instruct", subword_buckets=-1)


def test_spelling_reaches_words_no_instruction_trained(trained):
    fresh = tiny_model()
    before, after = word_vectors(fresh, EXTRA), word_vectors(trained, EXTRA)
    # 'darkest' moved with the n-grams it shares with 'darker' ...
    assert np.abs(after[0] - before[0]).max() > 1e-3
    # ... a word whose n-grams no instruction used did not move at all
    np.testing.assert_allclose(after[1], before[1], atol=1e-7)

    # without spelling, a word no instruction used keeps its initial vector
    whole_words = tiny_model(subwords=False)
    initial = word_vectors(whole_words, ["darkest"])
    np.testing.assert_allclose(word_vectors(fit(whole_words, epochs=1), ["darkest"]), initial)


def test_save_load_and_export_carry_the_table(trained, tmp_path):
    from pix2pix_tf.exporters import export_model

    path = tmp_path / "editor.keras"
    trained.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.subword_buckets == BUCKETS
    np.testing.assert_array_equal(loaded.generator.get_layer("text_subwords").table.numpy(),
                                  subword_table(VOCAB, BUCKETS))
    images = photos(2, 16, seed=3).astype(np.float32) / 127.5 - 1
    asks = ["dim the picture", "make it dimmer"]
    np.testing.assert_allclose(loaded.edit(images, asks), trained.edit(images, asks), atol=1e-6)

    reports = export_model(trained, tmp_path / "export", ["saved_model", "tflite_float32", "onnx"],
                           image_size=(16, 16), test_images=images, test_conditions={"instruction": asks},
                           verbose=False, inference_mode="moving_average")
    rows = {r.name.split(" ")[0]: r for r in reports}
    for name in ("saved_model", "tflite_float32", "onnx"):
        assert rows[name].max_abs_diff < 1e-4, (name, rows[name].max_abs_diff)
