"""Pretrained text encoders (keras-hub) in the instruction editor, offline: a tiny randomly
initialised BERT is saved as a preset folder and loaded through the same ``from_preset`` path a
downloaded preset takes. Nothing here downloads."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import TrainConfig
from pix2pix_tf.model import default_optimizer
from pix2pix_tf.networks import build_discriminator, build_generator
from pix2pix_tf.tasks.instruct.edits import EDITS
from pix2pix_tf.tasks.instruct.model import InstructPix2Pix
from pix2pix_tf.tasks.instruct.pretrained_text import (
    WordPieceVocabulary,
    import_keras_hub,
    load_text_encoder,
)
from pix2pix_tf.tasks.instruct.text import TOKENS, TextConditioning, build_vocabulary, read_vocabulary

L = 12
ASKS = ["make it sepia", "blur it", "invert the colours"]

try:  # the optional extra: without it, every test but the first skips, saying how to install it
    keras_hub = import_keras_hub()
    HUB_MISSING = ""
except ImportError as error:
    keras_hub, HUB_MISSING = None, str(error)
needs_hub = pytest.mark.skipif(keras_hub is None, reason=HUB_MISSING)


def test_missing_keras_hub_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pix2pix_tf\[hub\]"):
        import_keras_hub()
    with pytest.raises(ValueError, match="applies to --task instruct"):
        TrainConfig.create(text_encoder="bert_tiny_en_uncased")


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A tiny BERT (1 layer, width 16) with a vocabulary of the edits' training words, saved
    as a keras-hub preset folder."""
    words = build_vocabulary([p for e in EDITS.values() for p in e.phrasings])
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + ["##s", "##er", "##ness"]
    folder = tmp_path_factory.mktemp("tiny_bert")
    keras.utils.set_random_seed(0)
    keras_hub.models.BertTokenizer(vocabulary=pieces, lowercase=True).save_to_preset(folder)
    keras_hub.models.BertBackbone(vocabulary_size=len(pieces), num_layers=1, num_heads=2,
                                  hidden_dim=16, intermediate_dim=32,
                                  max_sequence_length=32).save_to_preset(folder)
    return str(folder)


def tiny_editor(preset, **kwargs):
    vocabulary, backbone = load_text_encoder(preset, L)
    text = dict(vocabulary_size=vocabulary.size, sequence_length=L, text_dim=16)
    g = build_generator("unet", num_downs=3, ngf=8, seed=0, inference_mode="moving_average",
                        conditioning=TextConditioning("generator", backbone=backbone, **text))
    d = build_discriminator("patchgan", ndf=8, n_layers=1, seed=1,
                            conditioning=TextConditioning("discriminator", **text))
    return InstructPix2Pix(g, d, vocabulary=vocabulary.spec, sequence_length=L,
                           text_encoder=preset, inference_mode="moving_average", seed=0, **kwargs)


@needs_hub
def test_wordpiece_vocabulary_in_graphs_in_python_and_on_file(preset, tmp_path):
    vocabulary = load_text_encoder(preset, L)[0]
    assert isinstance(vocabulary, WordPieceVocabulary)
    asks = ([p for e in EDITS.values() for p in e.phrasings + e.held_out]
            + ["Make it BRIGHTER, please!", "déjà blurred", "zebra sepia", "   "])
    ids = vocabulary.ids_of(asks).numpy()  # TensorFlow ops (keras-hub's tokenizer)
    python = np.stack([vocabulary.ids_in_python(a) for a in asks])  # a client's way
    np.testing.assert_array_equal(ids, python)
    unknown, start, end = vocabulary.unknown, vocabulary.start, vocabulary.end
    sepia = vocabulary.ids_in_python("zebra sepia")
    assert sepia[0] == start and sepia[1] == unknown and sepia[3] == end  # [CLS] [UNK] sepia [SEP]
    assert vocabulary.pieces("blurs") == ["blur", "##s"]  # an unseen word in known pieces
    assert not ids[-1].any()  # an empty instruction is padding only: no edit guidance

    in_graph = tf.data.Dataset.from_tensor_slices(asks[:8]).batch(4).map(vocabulary.ids_of)
    np.testing.assert_array_equal(np.concatenate(list(in_graph.as_numpy_iterator())), ids[:8])

    with pytest.raises(ValueError, match="word pieces.*sequence length of 12"):
        vocabulary.encode(["make it " * 6 + "dark"])
    with pytest.raises(ValueError, match="is empty"):
        vocabulary.encode(["  "])
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence length"):
        vocabulary.ids_of(["make it " * 6 + "dark"])

    vocabulary.write(tmp_path / "vocabulary.txt")
    read = read_vocabulary(tmp_path / "vocabulary.txt")
    assert isinstance(read, WordPieceVocabulary) and read.spec == vocabulary.spec
    assert read.sequence_length == L


@needs_hub
def test_editor_trains_with_a_frozen_pretrained_encoder_and_round_trips(preset, tmp_path):
    from test_instruct import photos

    from pix2pix_tf.data import pair_pipeline
    from pix2pix_tf.tasks.instruct.data import EditsSource

    keras.utils.set_random_seed(0)
    model = tiny_editor(preset)
    encoder = model.generator.get_layer("text_pretrained")
    assert not encoder.trainable and not encoder.backbone.trainable_weights
    frozen = [w.numpy().copy() for w in encoder.backbone.weights]
    film = model.generator.get_layer("down2_film").weights[0]
    assert not film.numpy().any()  # FiLM starts at zero: plain pix2pix

    data = pair_pipeline(EditsSource(photos(8), size=32), batch_size=16, preprocess="crop",
                         crop_size=16, multiple=8)
    model.compile(default_optimizer(2e-3), default_optimizer(2e-3))
    model.fit(data, epochs=3, verbose=0)
    for before, after in zip(frozen, encoder.backbone.weights):
        np.testing.assert_array_equal(before, after.numpy())  # the pretrained weights stay
    assert film.numpy().any()  # the generator learned to listen

    image = photos(1, 24, seed=3)[0]
    outputs = [model.edit(image, ask) for ask in ASKS]
    assert not np.array_equal(outputs[0], outputs[1])  # the instruction changes the output

    path = tmp_path / "editor.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.vocabulary, WordPieceVocabulary)
    assert loaded.vocabulary.spec == model.vocabulary.spec and loaded.text_encoder == preset
    for ask, want in zip(ASKS, outputs):
        np.testing.assert_array_equal(loaded.edit(image, ask), want)

    # Word dropout replaces words with [UNK], never the start and end tokens.
    dropped = tiny_editor(preset, word_dropout=0.99).network_inputs(
        {"image": np.zeros((1, 16, 16, 3), np.float32),
         "instruction": tf.constant(["make it sepia"])}, training=True)[TOKENS].numpy()[0]
    said = model.vocabulary.encode(["make it sepia"])[0]
    assert dropped[0] == said[0] and dropped[4] == said[4]
    assert (dropped[1:4] == model.vocabulary.unknown).sum() >= 2


@needs_hub
def test_train_edit_and_export_commands_with_a_preset(preset, tmp_path):
    from PIL import Image
    from test_instruct import photo_folder, photos

    from pix2pix_tf.cli import train as train_cli
    from pix2pix_tf.exporters import export_model

    photo_folder(tmp_path / "photos")
    run = tmp_path / "run"
    assert train_cli.main(["--task", "instruct", "--text-encoder", preset, "--data",
                           f"edits:{tmp_path / 'photos'}", "--edit-size", "32", "--crop-size",
                           "16", "--num-downs", "3", "--ngf", "8", "--ndf", "8", "--epochs", "1",
                           "--epochs-decay", "0", "--n-layers-d", "1", "--sequence-length",
                           str(L), "--run-dir", str(run), "--quiet", "--samples", "0"]) == 0
    model = keras.models.load_model(run / "model.keras")
    assert model.text_encoder == preset and model.training_config["text_encoder"] == preset
    Image.fromarray(photos(1, 20)[0]).save(tmp_path / "photo.png")
    # In a new process, as a user runs it: the saved model loads with nothing imported first.
    edited = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.edit", "--model", str(run / "model.keras"), "--input",
         str(tmp_path / "photo.png"), "--instruction", "add some blur", "--output",
         str(tmp_path / "out")], capture_output=True, text=True)
    assert edited.returncode == 0, edited.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "photo.png").size == (20, 20)

    images = photos(3, 16, seed=9).astype(np.float32) / 127.5 - 1
    reports = export_model(model, tmp_path / "export", ["saved_model", "tflite_float32"],
                           image_size=(16, 16), test_images=images, test_conditions={"instruction": ASKS},
                           inference_mode=model.inference_mode, verbose=False)
    rows = {r.name.split(" ")[0]: r for r in reports}
    for name in ("saved_model", "tflite_float32"):
        assert rows[name].max_abs_diff < 1e-4, (name, rows[name].max_abs_diff)
    written = read_vocabulary(tmp_path / "export" / "pix2pix_vocabulary.txt")
    np.testing.assert_array_equal(written.ids_in_python("make it sepia"),
                                  model.vocabulary.encode(["make it sepia"])[0])
    served = tf.saved_model.load(str(tmp_path / "export" / "saved_model" / "pix2pix" / "1"))
    from pix2pix_tf.exporters.common import in_float32

    # exports compute in float32 (a copy, where --mixed-precision auto trained in 16 bits)
    want = in_float32(model.generator)(
        {"image": images[:1], TOKENS: model.vocabulary.encode(ASKS[:1])}, training=False).numpy()
    out = served.signatures["serving_default"](images=tf.constant(images[:1]),
                                               instruction=tf.constant(ASKS[:1]))
    np.testing.assert_allclose(out["output"].numpy(), want, atol=1e-4)


@needs_hub
def test_a_bad_preset_names_itself(tmp_path):
    with pytest.raises(ValueError, match="could not load the text encoder preset.*empty"):
        load_text_encoder(str(tmp_path / "empty"), L)
    # A byte-pair tokenizer (GPT-2's kind) is refused, before any backbone weights are read.
    keras_hub.models.GPT2Tokenizer(vocabulary={"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3},
                                   merges=["a b"]).save_to_preset(tmp_path / "gpt2")
    keras_hub.models.GPT2Backbone(vocabulary_size=4, num_layers=1, num_heads=1, hidden_dim=4,
                                  intermediate_dim=8, max_sequence_length=8).save_to_preset(
                                      tmp_path / "gpt2")
    with pytest.raises(ValueError, match="GPT2Tokenizer.*WordPiece tokenizers"):
        load_text_encoder(str(tmp_path / "gpt2"), L)
