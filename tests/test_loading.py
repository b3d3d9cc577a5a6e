"""Loading just works: after ``import pix2pix_tf``, ``keras.models.load_model`` (and
``pix2pix_tf.load_model``) load every model the package writes, in a fresh process: both tasks,
converted pretrained models, with their schedules and optimizers; and files written before the
task contract (tests/fixtures/legacy, made by commit 570fda5) still load and give the outputs
they gave then."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pix2pix_tf
from pix2pix_tf.tasks.instruct.text import TextConditioning

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
TORCH = Path(__file__).parent / "fixtures" / "torch_unet" / "unet_zip.pth"

# Runs in a fresh interpreter: only `import pix2pix_tf`, then Keras' own loader.
FRESH = """
import json, sys
import numpy as np
import pix2pix_tf
import keras
out = {}
for path in sys.argv[1:]:
    model = keras.models.load_model(path)
    again = pix2pix_tf.load_model(path)
    opt = getattr(model, "g_optimizer", None)
    out[path] = {"class": type(model).__name__, "task": pix2pix_tf.task_of(model).name,
                 "same_class": type(again) is type(model),
                 "steps": None if opt is None else int(opt.iterations.numpy()),
                 "schedule": None if opt is None else type(opt.learning_rate).__name__
                 if not hasattr(opt, "_learning_rate") else type(opt._learning_rate).__name__}
print("RESULT" + json.dumps(out))
"""


def load_fresh(*paths):
    done = subprocess.run([sys.executable, "-c", FRESH, *map(str, paths)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One model of each family, written by the current code."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("written")
    x = np.zeros((2, 16, 16, 3), np.float32)
    translator = pix2pix_tf.Pix2Pix(
        pix2pix_tf.build_generator("unet", num_downs=3, ngf=8, seed=0),
        pix2pix_tf.build_discriminator("patchgan", ndf=8, n_layers=1, seed=1))
    schedule = pix2pix_tf.LinearDecay(2e-4, 1, 1, 4, per_step=True)
    translator.compile(g_optimizer=pix2pix_tf.default_optimizer(schedule),
                       d_optimizer=pix2pix_tf.default_optimizer(schedule))
    translator.fit(x, x, epochs=1, batch_size=2, verbose=0)
    translator.save(root / "translate.keras")
    words = ["make", "it", "sepia"]
    text = dict(vocabulary_size=len(words) + 2, sequence_length=4, text_dim=8)
    editor = pix2pix_tf.InstructPix2Pix(
        pix2pix_tf.build_generator("unet", num_downs=3, ngf=8, seed=0,
                                   conditioning=TextConditioning("generator", **text)),
        pix2pix_tf.build_discriminator("patchgan", ndf=8, n_layers=1, seed=1,
                                       conditioning=TextConditioning("discriminator", **text)),
        vocabulary=words, sequence_length=4, text_dim=8, subword_buckets=0)
    editor.compile()
    asked = {"image": x, "instruction": tf.constant(["make it sepia"] * 2)}
    editor.fit(tf.data.Dataset.from_tensors((asked, x)), epochs=1, verbose=0)
    editor.save(root / "instruct.keras")
    pix2pix_tf.load_pretrained(str(TORCH)).save(root / "pretrained.keras")
    return root


def test_every_family_loads_in_a_fresh_process(written):
    found = load_fresh(*(written / f"{n}.keras" for n in ("translate", "instruct", "pretrained")))
    rows = {Path(k).stem: v for k, v in found.items()}
    assert rows["translate"]["class"] == "Pix2Pix" and rows["translate"]["task"] == "translate"
    assert rows["instruct"]["class"] == "InstructPix2Pix"
    assert rows["instruct"]["task"] == "instruct"
    assert rows["translate"]["steps"] == 1 and rows["instruct"]["steps"] == 1  # optimizer state
    assert rows["translate"]["schedule"] == "LinearDecay"
    assert rows["pretrained"]["class"] == "Pix2Pix"
    assert all(r["same_class"] for r in rows.values())


LEGACY_OUTPUTS = """
import sys
import numpy as np
import pix2pix_tf
expected = np.load(sys.argv[1] + "/outputs.npz")
translator = pix2pix_tf.load_model(sys.argv[1] + "/translate.keras")
editor = pix2pix_tf.load_model(sys.argv[1] + "/instruct.keras")
edited = editor({"image": expected["x"], "instruction": expected["instructions"]}).numpy()
print("DIFF", float(np.abs(translator(expected["x"]).numpy() - expected["translate"]).max()),
      float(np.abs(edited - expected["instruct"]).max()), editor.subword_buckets,
      editor.vocabulary.words[0])
"""


def test_files_from_before_the_task_contract_still_load_and_agree():
    found = load_fresh(LEGACY / "translate.keras", LEGACY / "instruct.keras")
    rows = {Path(k).stem: v for k, v in found.items()}
    assert rows["translate"]["class"] == "Pix2Pix" and rows["translate"]["steps"] == 1
    assert rows["instruct"]["class"] == "InstructPix2Pix" and rows["instruct"]["steps"] == 1
    # The outputs they gave when written, in a fresh process of their own too.
    done = subprocess.run([sys.executable, "-c", LEGACY_OUTPUTS, str(LEGACY)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("DIFF")).split()
    assert float(line[1]) < 1e-5 and float(line[2]) < 1e-5, line
    assert line[3:] == ["64", "make"], line


def test_a_file_that_is_not_a_model_is_one_line(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(pix2pix_tf.DataError) as error:
        pix2pix_tf.load_model(bad)
    assert len(str(error.value).splitlines()) == 1 and "bad.keras" in str(error.value)
