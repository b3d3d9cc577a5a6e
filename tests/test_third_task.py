"""The proof that the task contract is real: a third task, registered in this one file, trains,
resumes after an interrupt, predicts, evaluates and exports (SavedModel, TFLite, ONNX) through
the same commands, with no change anywhere else.

The task: image + integer class label -> image. The label says which of three exact edits to
apply (0: the negative, 1: the channels reversed, 2: the image itself), so a model must read
it. Its generator is the shared U-Net with a label hook (an embedding, then FiLM after every
block); its data is a kind of source registered with the one data entry (``labels:N``).
"""

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import pix2pix_tf
from pix2pix_tf.cli import evaluate as evaluate_cli
from pix2pix_tf.cli import export as export_cli
from pix2pix_tf.cli import predict as predict_cli
from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.core.conditioning import Conditioning, FiLM
from pix2pix_tf.core.layers import SeedSequence
from pix2pix_tf.data import PairSource, register_source
from pix2pix_tf.model import Pix2Pix
from pix2pix_tf.options import check_choices, option
from pix2pix_tf.tasks import TASKS, Task, register_task

LABEL = "label"
SIZE = 16


# ------------------------------------------------------------------------------------ data
class LabelSource(PairSource):
    """``labels:N``: N blocky photos, each with a label 0-2 and the edit it names."""

    extras = (LABEL,)
    sizes = {(SIZE, SIZE)}

    def __init__(self, count, split):
        rng = np.random.default_rng(0 if split == "train" else 1)
        base = rng.uniform(0, 1, (count, SIZE // 4, SIZE // 4, 3)).astype("float32")
        self.images = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)
        self.labels = (np.arange(count) % 3).astype("int32")[:, None]  # (N, 1)
        self.name = f"labels ({split})"

    def __len__(self):
        return len(self.images)

    def load(self, index):
        image = tf.gather(tf.constant(self.images), index)
        label = tf.gather(tf.constant(self.labels), index)
        target = tf.switch_case(label[0], [lambda: 1.0 - image, lambda: image[..., ::-1],
                                           lambda: image])
        return {"a": image, "b": target, LABEL: label}


register_source("labels", lambda d: isinstance(d, str) and d.startswith("labels:"),
                lambda d, split, **_: LabelSource(int(d.split(":")[1]) // (1 if split == "train"
                                                                          else 3), split),
                lambda d: ["train", "test"])


# ----------------------------------------------------------------------------- conditioning
class LabelConditioning(Conditioning):
    name_prefix = "labelled_"

    def __init__(self, classes, dim=8):
        self.classes, self.dim = classes, dim

    def inputs(self, seeds, levels=None):
        label = keras.Input((1,), dtype="int32", name=LABEL)
        init = keras.initializers.RandomNormal(0.0, 0.5, seed=SeedSequence(
            None if seeds.seed is None else seeds.seed + 11).next())
        embedded = keras.layers.Embedding(self.classes, self.dim, embeddings_initializer=init,
                                          name="label_embedding")(label)
        self.vector = keras.layers.Flatten(name="label_vector")(embedded)  # (b, dim)
        return {LABEL: label}

    def block(self, x, name, depth=None):
        return FiLM(name=f"{name}_label_film")([x, self.vector])


# ----------------------------------------------------------------------------- the task
@keras.saving.register_keras_serializable(package="label_task_test")
class LabelPix2Pix(Pix2Pix):
    task_name = "label"


@dataclasses.dataclass
class LabelOptions:
    num_classes: int = option(3, "how many labels there are", "label")

    def __post_init__(self):
        check_choices(self)


class LabelTask(Task):
    name = "label"
    summary = "image + class label -> image"
    Options = LabelOptions
    PRESETS = {"label_tiny": dict(data="labels:24", generator="unet", num_downs=2, ngf=8,
                                  ndf=8, n_layers_d=1, crop_size=SIZE, load_size=SIZE,
                                  epochs=1, epochs_decay=1, batch_size=4, samples=3,
                                  inference_mode="deterministic", dropout=False,
                                  # exact resume is asserted in float32: in bfloat16 (`auto` on
                                  # AVX512-BF16 CPUs) a resumed run differs by about 1e-5
                                  mixed_precision="float32")}
    default_preset = "label_tiny"
    model_class = LabelPix2Pix
    predict_options = (LABEL,)

    def conditioning(self, config, train_source):
        return LabelConditioning(config.num_classes), None, {}

    def sample_labels(self, inputs):
        return [f"label {int(v)}" for v in np.asarray(inputs[LABEL]).ravel()]

    def add_predict_arguments(self, group):
        group.add_argument("--label", type=int, help="which edit (0-2)")

    def predictor(self, model, args):
        if args.label is None:
            raise ValueError("give --label")
        return lambda image: pix2pix_tf.translate(model, image, tile=args.tile,
                                                  conditions={LABEL: np.array([args.label])})


register_task(LabelTask())


# ------------------------------------------------------------------------------ the tests
def run(tmp_path, name, *more):
    return ["--task", "label", "--run-dir", str(tmp_path / name), "--quiet",
            "--checkpoint-every", "2", *more]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("label")
    assert train_cli.main(run(root, "whole")) == 0
    return root


def test_third_task_is_listed_and_its_options_are_its_own(trained):
    assert "label" in TASKS
    help_text = train_cli.parser().format_help()
    assert "--task label options" in help_text and "--num-classes" in help_text
    assert train_cli.main(["--task", "translate", "--num-classes", "4",
                           "--run-dir", str(trained / "x")]) == 2  # refused, not ignored
    config = json.loads((trained / "whole" / "config.json").read_text())
    assert config["task"] == "label" and config["num_classes"] == 3
    assert "text_dim" not in config  # other tasks' options are not in its config


def test_third_task_trains_reads_the_label_and_loads_in_keras(trained):
    model = keras.models.load_model(trained / "whole" / "model.keras")
    assert type(model) is LabelPix2Pix and pix2pix_tf.task_of(model).name == "label"
    assert model.g_optimizer.iterations.numpy() == 12  # 2 epochs x 6 batches, state kept
    x = np.random.default_rng(3).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    outs = [model({"image": x, LABEL: np.full((2, 1), k, np.int32)}).numpy() for k in (0, 1)]
    assert np.abs(outs[0] - outs[1]).mean() > 1e-3  # the label changes the output
    history = (trained / "whole" / "history.csv").read_text()
    assert "val_l1" in history.splitlines()[0]


def test_third_task_resumes_after_an_interrupt_exactly(trained, tmp_path, monkeypatch):
    from pix2pix_tf.callbacks import StopOnCtrlC

    seen = {"batches": 0}
    original = StopOnCtrlC.on_train_batch_end

    def ctrl_c_at_batch_8(self, batch, logs=None):  # as a Ctrl-C in epoch 2 would
        seen["batches"] += 1
        if seen["batches"] == 8:
            self.requested = True
        return original(self, batch, logs)

    monkeypatch.setattr(StopOnCtrlC, "on_train_batch_end", ctrl_c_at_batch_8)
    assert train_cli.main(run(tmp_path, "cut")) == 130
    monkeypatch.setattr(StopOnCtrlC, "on_train_batch_end", original)
    assert (tmp_path / "cut" / "checkpoints" / "partial.keras").exists()
    assert train_cli.main(run(tmp_path, "cut")) == 0
    whole = keras.models.load_model(trained / "whole" / "model.keras")
    resumed = keras.models.load_model(tmp_path / "cut" / "model.keras")
    for a, b in zip(whole.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def test_third_task_predicts_and_evaluates_through_the_commands(trained, tmp_path):
    from PIL import Image

    photo = (np.random.default_rng(5).uniform(0, 255, (20, 28, 3))).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "in.png")
    model = str(trained / "whole" / "model.keras")
    outputs = {}
    for label in (0, 1):
        out = tmp_path / f"out{label}"
        assert predict_cli.main(["--model", model, "--input", str(tmp_path / "in.png"),
                                 "--output", str(out), "--label", str(label)]) == 0
        outputs[label] = np.asarray(Image.open(out / "in.png"))
        assert outputs[label].shape == photo.shape  # any size: padded and cropped back
    assert np.abs(outputs[0].astype(int) - outputs[1]).mean() > 0.5
    assert predict_cli.main(["--model", model, "--input", str(tmp_path / "in.png"),
                             "--output", str(tmp_path / "o"), "--instruction", "x"]) == 2
    report = tmp_path / "report"
    assert evaluate_cli.main(["--model", model, "--data", "labels:24", "--crop-size",
                              str(SIZE), "--output", str(report)]) == 0
    results = json.loads((report / "metrics.json").read_text())["results"]
    assert {"model", "identity (output = input)"} <= set(results)


def test_third_task_exports_to_every_format(trained, tmp_path, capsys):
    model = str(trained / "whole" / "model.keras")
    out = tmp_path / "exports"
    assert export_cli.main([model, "--saved-model", "--onnx", "--tflite", "float32",
                            "--output", str(out), "--images", "4"]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines()
            if line.startswith(("saved_model", "tflite_float32", "onnx"))}
    assert set(rows) == {"saved_model", "tflite_float32", "onnx"}, printed
    for row in rows.values():
        assert float(row[-3]) > 60, row  # PSNR vs Keras (dB): 3rd column from the end


def test_a_model_of_an_unknown_kind_is_one_line(trained):
    """In a fresh process that never imported this file, the label model's class is unknown:
    one line naming it and what to import, no config dump."""
    code = ("import sys, pix2pix_tf\n"
            "try:\n    pix2pix_tf.load_model(sys.argv[1])\n"
            "except pix2pix_tf.DataError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(trained / "whole" / "model.keras")],
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and "LabelPix2Pix" in lines[0] and "import" in lines[0], done
