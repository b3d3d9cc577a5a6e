"""A new export target is one table entry: added here, in one file, it is written and verified by
``export_model(formats=[name])``, offered by the export command with its own flag and option,
and refused names say what exists (as tests/test_third_task.py does for a task)."""

import time

import keras
import numpy as np
import pytest
from helpers import tiny_model

from pix2pix_tf.cli import export as export_cli
from pix2pix_tf.exporters import TARGETS, export_model
from pix2pix_tf.exporters.targets import Option, Target, _formats
from pix2pix_tf.networks import as_generator


def write_generator(model, output_dir, job):
    """The generator alone, as a .keras file named by the target's own option."""
    path = output_dir / f"{job.options['generator_stem']}.keras"
    as_generator(model).save(path)
    return path


def run_generator(path, images, conditions):
    generator = keras.models.load_model(path)
    generator.inference_mode = "deterministic"
    start = time.perf_counter()
    outputs = keras.ops.convert_to_numpy(generator(images, training=False))
    return outputs, (time.perf_counter() - start) * 1000 / len(images)


@pytest.fixture
def target(monkeypatch):
    monkeypatch.setitem(TARGETS, "keras_generator", Target(
        "keras_generator", write_generator, run_generator, "the generator alone, as .keras",
        "keras-generator", options={"generator_stem": Option("generator", "its file name")}))


def test_a_new_target_is_written_and_verified_from_its_table_entry(target, tmp_path):
    model = tiny_model(seed=2)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    reports = export_model(model, tmp_path, ["keras_generator"], image_size=(16, 16),
                           test_images=x, generator_stem="g", verbose=False)
    assert [r.name for r in reports] == ["keras", "keras_generator"]
    assert reports[1].max_abs_diff < 1e-6 and (tmp_path / "g.keras").is_file()


def test_the_export_command_offers_its_flag_and_option(target, tmp_path, capsys):
    model = tiny_model(seed=2)
    model.compile()
    model.save(tmp_path / "m.keras")
    help_text = export_cli.parser().format_help()
    assert "--keras-generator" in help_text and "--generator-stem" in help_text
    code = export_cli.main([str(tmp_path / "m.keras"), "--keras-generator", "--generator-stem",
                            "mine", "--output", str(tmp_path / "out"), "--size", "16"])
    assert code == 0
    assert (tmp_path / "out" / "mine.keras").is_file()
    assert not (tmp_path / "out" / "saved_model").exists()  # only what was asked


def test_unknown_formats_and_options_are_named_and_old_flags_still_work(target):
    with pytest.raises(TypeError, match="unknown export formats \\['pdf'\\]; choose from"):
        _formats(["pdf"], {})
    with pytest.raises(TypeError, match="unknown options \\['web_colour'\\]"):
        _formats(None, {"web_colour": "red"})
    names, options = _formats(None, {"tflite": ["float32"], "onnx": False})
    assert names == ["saved_model", "tflite_float32"]
    assert options == {"onnx_upsampling": "transpose", "web_runtime": "cdn",
                       "web_weights": "float16", "web_upsampling": "transpose",
                       "generator_stem": "generator"}
    assert _formats(None, {"saved_model": False, "tflite": (), "onnx": False,
                           "web": True})[0] == ["web"]
    with pytest.raises(TypeError, match="not both"):
        _formats(["onnx"], {"onnx": True})


def test_one_inference_mode_and_calibration_policy_for_python_and_the_command(tmp_path,
                                                                             capsys):
    from pix2pix_tf.exporters.targets import default_inference_mode, int8_calibration

    model = tiny_model(seed=2)
    assert model.inference_mode == "paper" and default_inference_mode(model) == "deterministic"
    model.inference_mode = "moving_average"
    assert default_inference_mode(model) == "moving_average"
    reports = export_model(model, tmp_path, ["tflite_float32", "tflite_int8"],
                           image_size=(16, 16), verbose=False)  # no calibration, no data
    assert [r.name for r in reports] == ["tflite_float32"]
    assert "skipping full-int8 TFLite: Full-int8 TFLite needs calibration images" in (
        capsys.readouterr().out)
    with pytest.raises(ValueError, match="needs calibration images"):
        int8_calibration(model, ["tflite_int8"], (16, 16), asked=True)
    model.training_config = {"data": "demo"}  # recorded training data: calibrated on it
    formats, images = int8_calibration(model, ["tflite_int8"], (16, 16))
    assert formats == ["tflite_int8"] and len(images) == 100 and images[0].shape == (16, 16, 3)
