"""The instruction editor: text, FiLM, the matching-aware discriminator, data, evaluation."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import photos, tiny_editor

from pix2pix_tf.core import losses
from pix2pix_tf.data import DataError, pair_pipeline
from pix2pix_tf.model import default_optimizer
from pix2pix_tf.networks import unet_generator
from pix2pix_tf.tasks.instruct.data import (
    DatasetSource,
    EditsSource,
    MetadataSource,
    names_side,
    resolve_columns,
)
from pix2pix_tf.tasks.instruct.edits import EDITS, edit_of
from pix2pix_tf.tasks.instruct.evaluate import copy_input, evaluate_instructions
from pix2pix_tf.tasks.instruct.model import InstructPix2Pix, wrong_instructions
from pix2pix_tf.tasks.instruct.text import TextConditioning, build_vocabulary
from pix2pix_tf.tasks.instruct.vocabulary import WordVocabulary

PHRASES = [p for e in EDITS.values() for p in e.phrasings]
VOCAB = build_vocabulary(PHRASES)
L = 12


def tiny_model(seed=0, **kwargs):
    return tiny_editor(VOCAB, L, seed=seed, **kwargs)


def photo_folder(root):
    """4 training and 2 test photos (32x32 PNGs) in ``root/train`` and ``root/test``."""
    from PIL import Image

    for split, n in (("train", 4), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i, photo in enumerate(photos(n, 32, seed=n)):
            Image.fromarray(photo).save(root / split / f"p{i}.png")


@pytest.fixture(scope="module")
def trained():
    """A tiny editor after a few dozen steps on the bundled edits of small photos."""
    return train_tiny(tiny_model())


def test_vocabulary_ids_and_checks():
    v = WordVocabulary(["make", "it", "sepia"], 4)
    ids = v.encode(["Make it SEPIA!", "make it pink"])
    np.testing.assert_array_equal(ids, [[2, 3, 4, 0], [2, 3, 1, 0]])  # 1: unknown word
    np.testing.assert_array_equal(v.ids_in_python("make it pink"), ids[1])
    with pytest.raises(ValueError, match="more than this model's sequence length of 4"):
        v.encode(["make it a lot more sepia"])
    with pytest.raises(ValueError, match="is empty"):
        v.encode(["   "])
    with pytest.raises(TypeError, match="instructions are text"):
        v.encode([42])
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence length"):
        tf.function(v.ids_of)(tf.constant(["one two three four five"]))


def test_film_starts_as_plain_unet_and_conditioning_changes_output(trained):
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    plain = unet_generator(num_downs=3, ngf=8, seed=0, inference_mode="deterministic")
    film = unet_generator(num_downs=3, ngf=8, seed=0, inference_mode="deterministic",
                          conditioning=TextConditioning("generator", vocabulary_size=10,
                                                        sequence_length=4, text_dim=8))
    tokens = np.array([[2, 3, 0, 0], [4, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(film({"image": x, "tokens": tokens}), plain(x), atol=1e-6)
    # every option starts as the plain U-Net too (zero-initialised FiLM and attention outputs)
    richer = unet_generator(num_downs=3, ngf=8, seed=0, inference_mode="deterministic",
                            conditioning=TextConditioning(
                                "generator", vocabulary_size=10, sequence_length=4, text_dim=8,
                                text_blocks=1, text_pooling="attention", cross_attention=2))
    assert any("attention" in layer.name for layer in richer.layers)
    np.testing.assert_allclose(richer({"image": x, "tokens": tokens}), plain(x), atol=1e-6)
    image = (photos(1, 16, seed=3)[0])
    outputs = [trained.edit(image, phrase) for phrase in
               ("make it black and white", "invert the colours", "make it darker")]
    assert np.abs(outputs[0].astype(int) - outputs[1]).mean() > 5
    assert np.abs(outputs[1].astype(int) - outputs[2]).mean() > 5


def test_matching_aware_loss_labels_real_with_wrong_text_fake():
    real = tf.fill((2, 3, 3, 1), 5.0)  # D is sure the real pairs are real
    fake = tf.fill((2, 3, 3, 1), -5.0)  # and the fakes fake
    wrong_real = tf.fill((2, 3, 3, 1), 5.0)  # but calls real-with-wrong-text real: penalised
    wrong_fake = tf.fill((2, 3, 3, 1), -5.0)
    weight = tf.constant([1.0, 0.0])  # example 2 has no valid wrong instruction
    bad = losses.matching_discriminator_loss(real, fake, wrong_real, weight).numpy()
    good = losses.matching_discriminator_loss(real, fake, wrong_fake, weight).numpy()
    assert bad[0] > good[0] + 1.0  # calling a mismatch real costs D
    assert bad[1] == pytest.approx(good[1])  # no wrong term where there is none
    plain = losses.discriminator_loss(real, fake).numpy()
    assert good[1] == pytest.approx(plain[1])

    tokens = tf.constant([[2, 3], [2, 3], [4, 0], [0, 0]])
    wrong, valid = wrong_instructions(tokens, tf.constant([0, 0, 1, 2]))
    np.testing.assert_array_equal(wrong.numpy()[0], [0, 0])  # rolled from the last example
    # same edit / same words / an empty instruction on either side are not mismatches
    np.testing.assert_array_equal(valid.numpy(), [False, False, True, False])


def train_tiny(model, epochs=30):
    """``model`` after ``epochs`` x 4 steps on the bundled edits of 8 small photos; its
    ``fit`` history is kept as ``model.fit_history``."""
    keras.utils.set_random_seed(0)
    source = EditsSource(photos(8), size=32)
    data = pair_pipeline(source, batch_size=16, preprocess="crop", crop_size=16, multiple=8)
    model.compile(default_optimizer(2e-3), default_optimizer(2e-3))  # a fast start for tests
    model.fit_history = model.fit(data, epochs=epochs, verbose=0).history
    return model


def test_training_teaches_d_to_reject_mismatches(trained):
    # The matching-aware term teaches D to call a real target with another edit's instruction
    # fake: its loss on such pairs (d_mismatch, logged either way) ends far lower than when the
    # term is off. (At this size, D's scores on new photos do not separate the two reliably:
    # how far 120 steps carry depends on the CPU's rounding.)
    without = train_tiny(tiny_model(lambda_mismatch=0.0))
    with_term = np.mean(trained.fit_history["d_mismatch"][-10:])
    assert with_term < 0.7 * np.mean(without.fit_history["d_mismatch"][-10:])


def test_save_load_round_trip_keeps_vocabulary_and_optimizer(trained, tmp_path):
    path = tmp_path / "editor.keras"
    trained.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, InstructPix2Pix)
    assert loaded.vocabulary.words == trained.vocabulary.words
    assert loaded.sequence_length == L
    assert int(loaded.g_optimizer.iterations) == int(trained.g_optimizer.iterations) > 0
    image = photos(1, 24, seed=2)[0]  # any size: 24 is padded to 32 and cropped back
    for phrase in ("make it sepia", "blur it"):
        np.testing.assert_array_equal(loaded.edit(image, phrase), trained.edit(image, phrase))


def test_edit_errors_name_the_fix(trained):
    image = photos(1, 16)[0]
    with pytest.raises(ValueError, match="is empty"):
        trained.edit(image, "")
    assert trained.edit(image, "", allow_empty=True).shape == image.shape
    with pytest.raises(ValueError, match="sequence length"):
        trained.edit(image, " ".join(["very"] * (L + 1)) + " dark")
    with pytest.raises(TypeError, match="instructions are text"):
        trained.edit(image, [None])
    with pytest.raises(ValueError, match="one instruction, or one per image"):
        trained.edit([image, image], ["blur it"] * 3)
    out = trained.edit(image, "invert it", strength=0.0)
    np.testing.assert_array_equal(out, image)  # strength 0 keeps the input


def test_no_text_baseline_ignores_instructions():
    model = tiny_model(instruction_dropout=1.0)
    assert not model.uses_text
    image = photos(1, 16)[0]
    np.testing.assert_array_equal(model.edit(image, "make it sepia"),
                                  model.edit(image, "invert it"))


def test_edits_source_targets_and_held_out_phrasings():
    source = EditsSource(photos(2), size=32)
    assert len(source) == 2 * len(EDITS)
    names = list(EDITS)
    for index in (0, 5, 11):
        record = source.load(tf.constant(index))
        edit = EDITS[names[index % len(EDITS)]]
        expected = np.clip(edit.function(record["a"]).numpy(), 0, 1)
        np.testing.assert_allclose(record["b"].numpy(), expected, atol=1e-6)
        assert edit_of(record["instruction"].numpy().decode()) is edit
        assert record["instruction"].numpy().decode() in edit.phrasings
    held = EditsSource(photos(2), "test", size=32, phrasings="held_out")
    assert all(any(t == h for e in EDITS.values() for h in e.held_out)
               for t in held.instructions)


class Table:
    """A minimal ``datasets.Dataset`` stand-in: rows of uint8 images and instructions."""

    column_names = ["input_image", "edit_prompt", "edited_image"]

    def __init__(self, images, texts):
        self.images, self.texts = images, texts

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        return {"input_image": self.images[i], "edit_prompt": self.texts[i],
                "edited_image": self.images[i]}


def test_instruction_naming_a_side_is_never_mirrored():
    """Instruction sources refuse to mirror "... the left half" (PairSource.may_mirror); the
    same source mirrors other instructions, and a plain pair source knows no such rule."""
    from pix2pix_tf.data.sources import ArraySource

    assert names_side("darken the left half") and not names_side("make it brighter")
    image = np.tile(np.linspace(0, 255, 16).astype(np.uint8)[None, :, None], (16, 1, 3))
    images = np.stack([image] * 16)
    expected = images.astype(np.float32) / 127.5 - 1

    def first_batch(source):
        data = pair_pipeline(source, batch_size=16, preprocess="none", multiple=8, augment=True)
        return next(iter(data))[0]["image"].numpy()

    sided = DatasetSource(Table(images, ["darken the left half"] * 16))
    np.testing.assert_allclose(first_batch(sided), expected, atol=1e-6)  # none flipped
    plain = DatasetSource(Table(images, ["blur it"] * 16))
    assert np.abs(first_batch(plain) - expected).max() > 0.5  # some were mirrored
    arrays = ArraySource(({"image": expected, "instruction": np.array(["the left"] * 16)},
                          expected))
    assert np.abs(first_batch(arrays) - expected).max() > 0.5  # arrays: no task's rule


def write_image(path, array):
    from PIL import Image

    Image.fromarray(array).save(path)


def metadata_folder(root, rows=3, size=16, column="edit_prompt"):
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, image in enumerate(photos(rows, size)):
        write_image(root / f"in{i}.png", image)
        write_image(root / f"out{i}.png", 255 - image)
        lines.append(json.dumps({"input_image_file_name": f"in{i}.png", column: "invert it",
                                 "edited_image_file_name": f"out{i}.png"}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_metadata_folder_and_column_errors(tmp_path):
    folder = metadata_folder(tmp_path / "data")
    source = MetadataSource(folder)
    assert len(source) == 3 and source.instructions == ["invert it"] * 3
    record = source.load(tf.constant(1))
    np.testing.assert_allclose(record["b"].numpy(), 1 - record["a"].numpy(), atol=1e-6)
    other = metadata_folder(tmp_path / "other", column="caption")
    with pytest.raises(DataError, match="no instruction column .* --columns instruction="):
        MetadataSource(other)
    assert len(MetadataSource(other, columns="instruction=caption")) == 3
    with pytest.raises(DataError, match="no column 'nope'"):
        resolve_columns(["a", "b"], {"input": "nope"})
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    broken["edit_prompt"] = ""
    (folder / "metadata.jsonl").write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    with pytest.raises(DataError, match="line 2: the instruction is empty"):
        MetadataSource(folder)
    del broken["edit_prompt"]
    (folder / "metadata.jsonl").write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    with pytest.raises(DataError, match="line 2: no 'edit_prompt'"):
        MetadataSource(folder)


def test_dataset_object_with_common_column_names():
    class Table:  # the interface of datasets.Dataset that DatasetSource uses
        column_names = ["original_image", "instruction", "edited_image"]

        def __init__(self, rows):
            self.rows = rows

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            return self.rows[i]

    from PIL import Image

    rows = [{"original_image": Image.fromarray(p), "instruction": "invert it",
             "edited_image": Image.fromarray(255 - p)} for p in photos(2, 16)]
    source = DatasetSource(Table(rows))
    record = source.load(tf.constant(0))
    np.testing.assert_allclose(record["b"].numpy(), 1 - record["a"].numpy(), atol=1e-6)
    rows[1]["instruction"] = 7
    with pytest.raises(DataError, match="row 1: the instruction is a int"):
        DatasetSource(Table(rows))


def test_hugging_face_datasets_objects_saved_folders_and_hub_layouts(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # nothing may reach the hub
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    from PIL import Image

    from pix2pix_tf.tasks.instruct.data import instruction_splits, open_instruction_source

    images = photos(3, 16)
    features = datasets.Features({"input_image": datasets.Image(),
                                  "edit_prompt": datasets.Value("string"),
                                  "edited_image": datasets.Image()})
    table = datasets.Dataset.from_dict(  # the columns of fusing/instructpix2pix-1000-samples
        {"input_image": [Image.fromarray(p) for p in images], "edit_prompt": ["invert it"] * 3,
         "edited_image": [Image.fromarray(255 - p) for p in images]}, features=features)

    def check(source, n):
        assert len(source) == n
        record = source.load(tf.constant(n - 1))
        np.testing.assert_allclose(record["b"].numpy(), 1 - record["a"].numpy(), atol=1e-6)
        assert record["instruction"].numpy() == b"invert it"

    check(open_instruction_source(table), 3)  # a Dataset object, as load_dataset returns it
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": table, "validation": table.select([0])}).save_to_disk(saved)
    assert instruction_splits(f"hf:{saved}") == ["train", "val"]
    check(open_instruction_source(f"hf:{saved}", "val"), 1)
    with pytest.raises(DataError, match="has no 'test' split"):
        open_instruction_source(f"hf:{saved}", "test")
    hub = tmp_path / "hub"  # a hub repository's layout, read by load_dataset like a hub name
    (hub / "data").mkdir(parents=True)
    table.to_parquet(hub / "data" / "train-00000-of-00001.parquet")
    check(open_instruction_source(f"hf:{hub}"), 3)
    with pytest.raises(DataError, match="has no instruction column"):
        open_instruction_source(table.rename_column("edit_prompt", "caption"))
    renamed = table.rename_column("edit_prompt", "caption")
    check(open_instruction_source(renamed, columns="instruction=caption"), 3)
    with pytest.raises(DataError, match="could not load it"):
        open_instruction_source(f"hf:{tmp_path / 'nothing'}")


def test_instruction_accuracy_of_an_oracle_and_of_copying():
    images = photos(4, 16).astype(np.float32) / 255.0

    def oracle(batch, texts):
        return np.clip(edit_of(texts[0]).function(tf.constant(batch)).numpy(), 0, 1)

    perfect = evaluate_instructions(None, images, outputs_fn=oracle)
    assert perfect["accuracy"] == 1.0 and perfect["counted"] > 0
    assert np.trace(perfect["confusion"]) == perfect["counted"]
    copying = evaluate_instructions(None, images, outputs_fn=copy_input)
    assert copying["accuracy"] < 0.5
    assert set(perfect["per_edit_psnr"]) == set(EDITS)  # PSNR to each edit's own target
    assert min(perfect["per_edit_psnr"].values()) > 60
    assert copying["per_edit_psnr"]["invert"] < 15 < copying["per_edit_psnr"]["blur"]
    assert copying["counted"] + copying["excluded"] == 4 * sum(
        len(e.held_out) for e in EDITS.values())


def test_export_takes_instructions_and_matches_keras(trained, tmp_path, caplog):
    from pix2pix_tf.exporters import export_model

    images = photos(3, 16, seed=9).astype(np.float32) / 127.5 - 1
    asks = ["make it sepia", "invert it", "blur it"]
    reports = export_model(trained, tmp_path, ["saved_model", "tflite_float32", "onnx"], image_size=(16, 16),
                           test_images=images, test_conditions={"instruction": asks}, verbose=False,
                           inference_mode="moving_average")
    rows = {r.name.split(" ")[0]: r for r in reports}
    assert set(rows) == {"keras", "saved_model", "tflite_float32", "onnx"}
    for name in ("saved_model", "tflite_float32", "onnx"):
        assert rows[name].max_abs_diff < 1e-4, (name, rows[name].max_abs_diff)
    # TensorFlow's table-collection warning during the ONNX conversion reads like a failure
    assert "serializing table_initializer" not in caplog.text
    vocabulary = WordVocabulary.read(tmp_path / "pix2pix_vocabulary.txt")
    assert vocabulary.words == trained.vocabulary.words
    np.testing.assert_array_equal(vocabulary.ids_in_python("Make it sepia!"),
                                  trained.vocabulary.encode(["make it sepia"])[0])

    served = tf.saved_model.load(str(tmp_path / "saved_model" / "pix2pix" / "1"))
    want = trained.generator({"image": images[:1], "tokens": trained.vocabulary.encode(
        ["make it sepia"])}, training=False).numpy()
    out = served.signatures["serving_default"](images=tf.constant(images[:1]),
                                               instruction=tf.constant(["make it sepia"]))
    np.testing.assert_allclose(out["output"].numpy(), want, atol=1e-4)
    png = tf.io.encode_png(tf.cast((images[0] + 1) * 127.5, tf.uint8))
    encoded = served.signatures["encoded"](image_bytes=tf.stack([png]),
                                           instruction=tf.constant(["make it sepia"]))
    assert tf.io.decode_png(encoded["output_bytes"][0]).shape == (16, 16, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence length"):
        served.signatures["serving_default"](
            images=tf.constant(images[:1]), instruction=tf.constant([" ".join(["dark"] * 40)]))


def test_commands_train_edit_evaluate(tmp_path, capsys):
    from PIL import Image

    from pix2pix_tf.cli import edit as edit_cli
    from pix2pix_tf.cli import evaluate as evaluate_cli
    from pix2pix_tf.cli import train as train_cli

    photo_folder(tmp_path / "photos")
    run = tmp_path / "run"
    args = ["--task", "instruct", "--data", f"edits:{tmp_path / 'photos'}", "--edit-size", "32",
            "--crop-size", "16", "--num-downs", "3", "--ngf", "8", "--ndf", "8", "--epochs",
            "1", "--epochs-decay", "0", "--n-layers-d", "1", "--run-dir", str(run), "--quiet", "--samples", "2"]
    assert train_cli.main(args) == 0
    assert (run / "model.keras").is_file() and (run / "samples" / "final.png").is_file()
    history = (run / "history.csv").read_text()
    assert "d_mismatch" in history and "val_l1" in history
    assert train_cli.main(args) == 0  # done already: resumes, nothing to train
    model = keras.models.load_model(run / "model.keras")
    # the default built-in encoder reads spelling and knows the bundled English words: also
    # 'photograph', which no training phrasing uses
    assert model.subword_buckets == 16384 and "photograph" in model.vocabulary.words
    assert "photograph" not in build_vocabulary(PHRASES)
    Image.fromarray(photos(1, 20)[0]).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert edit_cli.main(["--model", str(run / "model.keras"), "--input",
                          str(tmp_path / "photo.png"), "--instruction", "make it sepia",
                          "--output", str(out)]) == 0
    assert Image.open(out / "photo.png").size == (20, 20)
    assert edit_cli.main(["--model", str(run / "model.keras"), "--input",
                          str(tmp_path / "photo.png"), "--instruction", "  ",
                          "--output", str(out)]) == 2
    assert "the instruction is empty" in capsys.readouterr().err
    report = tmp_path / "report"
    assert evaluate_cli.main(["--model", str(run / "model.keras"), "--data",
                              f"edits:{tmp_path / 'photos'}", "--output", str(report)]) == 0
    printed = capsys.readouterr().out
    for row in ("chance (1/K, K=8)", "copy the input", "model, empty instruction"):
        assert row in printed
    assert (report / "confusion.png").is_file() and (report / "samples.png").is_file()
    metrics = json.loads((report / "metrics.json").read_text())
    counts = np.array(metrics["confusion"]["counts"])
    model_row = metrics["results"]["model"]
    assert counts.sum() == model_row["counted"] > 0
    assert model_row["accuracy"] == pytest.approx(np.trace(counts) / counts.sum())  # its matrix
    assert metrics["results"]["copy the input"]["accuracy"] != model_row["accuracy"] or \
        metrics["results"]["copy the input"]["l1"] != model_row["l1"]  # scored separately
    assert "PSNR to the target, dB" in printed and set(metrics["per_edit_psnr"]["model"]) == set(EDITS)
    # whole photos of everyday scenes at another size than training's crops
    assert evaluate_cli.main(["--model", str(run / "model.keras"), "--data", "edits:skimage",
                              "--photo-size", "24", "--output", str(report)]) == 0
    assert "5 held-out 24x24 images (edits:skimage" in capsys.readouterr().out
    assert evaluate_cli.main(["--model", str(run / "model.keras"), "--data", "edits:skimage",
                              "--photo-size", "20", "--output", str(report)]) == 2
    assert "not a multiple of 8" in capsys.readouterr().err


def test_pooling_layers():
    from pix2pix_tf.tasks.instruct.text import AttentionPool, MaskedMean

    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    tokens = np.array([[2, 3, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0]], np.int32)
    mean = MaskedMean()([x, tokens]).numpy()
    np.testing.assert_allclose(mean[0], x[0, :2].mean(0), atol=1e-6)
    np.testing.assert_allclose(mean[2], 0.0)  # an empty instruction: no guidance
    pool = AttentionPool()
    np.testing.assert_allclose(pool([x, tokens]).numpy(), mean, atol=1e-6)  # starts as the mean
    pool.score.kernel.assign(np.ones((5, 1), "float32"))
    weighted = pool([x, tokens]).numpy()
    assert not np.allclose(weighted[1], mean[1]) and np.allclose(weighted[2], 0.0)


def test_recolour_widens_the_training_colours_and_targets_follow():
    """recolour changes the hue and saturation of a share of the training photos, the same
    way every time, and each target is the edit of the recoloured photo."""
    plain = EditsSource(photos(6, 16), size=16, seed=0)
    recoloured = EditsSource(photos(6, 16), size=16, seed=0, recolour=0.5)
    again = EditsSource(photos(6, 16), size=16, seed=0, recolour=0.5)
    changed = 0
    for index in range(len(plain)):
        a, b = plain.load(index), recoloured.load(index)
        np.testing.assert_array_equal(b["a"].numpy(), again.load(index)["a"].numpy())
        edit = list(EDITS.values())[int(b["edit"])]
        np.testing.assert_allclose(b["b"].numpy(), np.clip(edit.function(b["a"]).numpy(), 0, 1),
                                   atol=1e-6)
        changed += not np.allclose(a["a"].numpy(), b["a"].numpy())
    assert 0.3 * len(plain) < changed < 0.7 * len(plain)
    with pytest.raises(ValueError, match="recolour must be in"):
        EditsSource(photos(2, 16), size=16, recolour=2.0)
