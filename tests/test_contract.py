"""The translator contract: the network registry, the generator contract, structured inputs,
data sources, and an extension registered by a test that plugs in everywhere."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import max_weight_diff, trainable

from pix2pix_tf import (
    DISCRIMINATORS,
    GENERATORS,
    Generator,
    Pix2Pix,
    build_discriminator,
    build_generator,
    register_generator,
)
from pix2pix_tf.config import TrainConfig, preset
from pix2pix_tf.data import DataError, available_splits, load_paired_dataset
from pix2pix_tf.exporters import export_model
from pix2pix_tf.inference import load_model, translate

#: The contract tests' build of a network stays small, so that every registered one is cheap.
MAX_TEST_PARAMETERS = 2_000_000


def pytest_generate_tests(metafunc):
    """Every registered network, kind of data and task, read from the tables once this module
    (and the generators it registers below) is imported: a newly registered one is tested with
    no list to update."""
    from pix2pix_tf.data.sources import SOURCE_KINDS
    from pix2pix_tf.tasks import TASKS

    for argument, table in (("g_name", GENERATORS), ("d_name", DISCRIMINATORS),
                            ("source_kind", SOURCE_KINDS), ("task_name", TASKS)):
        if argument in metafunc.fixturenames:
            metafunc.parametrize(argument, sorted(table))


def example_inputs(generator, size, batch=1):
    """Inputs for every input the generator's contract names: the image and any conditions."""
    rng = np.random.default_rng(0)
    inputs = {}
    for tensor in generator.inputs:
        shape = [batch] + [size if side is None else side for side in tensor.shape[1:]]
        inputs[tensor.name.split(":")[0]] = rng.uniform(-1, 1, shape).astype("float32")
    return inputs["image"] if len(inputs) == 1 else inputs


def test_resnet_generators_have_the_reference_parameter_counts():
    assert trainable(build_generator("resnet_9blocks", 3, 3)) == 11_383_427
    assert trainable(build_generator("resnet_6blocks", 3, 3)) == 7_841_411


def test_resnet_generator_is_fully_convolutional_at_multiples_of_four():
    g = build_generator("resnet_6blocks", 1, 2, ngf=4)
    assert g.size_multiple == 4 and g.input_names == ["image"]
    assert g(np.zeros((2, 12, 20, 1), "float32")).shape == (2, 12, 20, 2)
    with pytest.raises(ValueError, match="divisible by 4, but got 10x20"):
        g(np.zeros((1, 10, 20, 1), "float32"))


def test_every_generator_builds_trains_one_step_and_round_trips(g_name, tmp_path):
    generator = build_generator(g_name, 3, 3, seed=0, **GENERATORS[g_name].small)
    assert trainable(generator) <= MAX_TEST_PARAMETERS, (
        f"register {g_name!r} with small=... options for the tests")
    multiple = generator.size_multiple
    size = multiple * -(-16 // multiple)  # the smallest multiple the PatchGAN below can see
    model = Pix2Pix(generator, build_discriminator("patchgan", 3, 3, seed=1, ndf=4, n_layers=1))
    model.compile()
    x = example_inputs(generator, size)
    y = -(x["image"] if isinstance(x, dict) else x)
    logs = model.fit(x, y, epochs=1, verbose=0).history
    assert np.isfinite(logs["g_total"][0])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.generator, Generator)
    assert loaded.generator.size_multiple == generator.size_multiple
    model.inference_mode = loaded.inference_mode = "deterministic"
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_every_discriminator_builds_trains_one_step_and_round_trips(d_name, tmp_path):
    generator = build_generator("unet", 3, 3, seed=0, ngf=4, num_downs=3)
    discriminator = build_discriminator(d_name, 3, 3, seed=1, **DISCRIMINATORS[d_name].small)
    assert trainable(discriminator) <= MAX_TEST_PARAMETERS, (
        f"register {d_name!r} with small=... options for the tests")
    model = Pix2Pix(generator, discriminator)
    model.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    model.fit(x, -x, batch_size=2, epochs=1, verbose=0)
    moved = [not np.array_equal(a, w.numpy())
             for a, w in zip(d_before, model.discriminator.trainable_weights)]
    assert all(moved)  # every scale's weights trained
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert max_weight_diff(model, loaded) == 0.0


def test_multiscale_feature_matching_is_a_named_option():
    generator = build_generator("unet", 3, 3, seed=0, ngf=4, num_downs=3)
    d = build_discriminator("multiscale", 3, 3, seed=1, ndf=4, n_layers=1, num_scales=2)
    assert len(d.output) == 2 and all(len(scale) == 3 for scale in d.output)  # 2 features+logits
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    plain = Pix2Pix(generator, d)
    plain.compile()
    assert "g_feat" not in plain.fit(x, -x, verbose=0).history  # off by default
    matched = Pix2Pix(build_generator("unet", 3, 3, seed=0, ngf=4, num_downs=3),
                      build_discriminator("multiscale", 3, 3, seed=1, ndf=4, n_layers=1,
                                          num_scales=2), lambda_feat=10.0)
    matched.compile()
    feat = matched.fit(x, -x, verbose=0).history["g_feat"][0]
    assert feat > 0 and np.isfinite(feat)
    with pytest.raises(ValueError, match="lambda_feat > 0 needs a discriminator"):
        Pix2Pix(build_generator("unet", 3, 3, ngf=4, num_downs=3), lambda_gan=0.0,
                lambda_feat=10.0)  # the plain PatchGAN works too: tests/test_remedies.py


def test_resize_conv_upsampling_option():
    g = build_generator("unet", 3, 3, ngf=4, num_downs=3, upsampling="resize_conv")
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in g.layers)
    assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in g.layers)
    assert g(np.zeros((1, 16, 24, 3), "float32")).shape == (1, 16, 24, 3)
    with pytest.raises(ValueError, match="Unknown upsampling 'bilinear'"):
        build_generator("unet", 3, 3, upsampling="bilinear")


def test_registry_rejects_what_does_not_apply():
    with pytest.raises(ValueError, match="'unet_256' has num_downs=8; got num_downs=5"):
        build_generator("unet_256", 3, 3, num_downs=5)
    with pytest.raises(ValueError, match="does not take skips"):
        build_generator("resnet_9blocks", 3, 3, skips=False)
    with pytest.raises(ValueError, match="Unknown generator 'nope'; choose one of"):
        build_generator("nope")
    with pytest.raises(ValueError, match="--skips False does not apply to 'resnet_9blocks'"):
        TrainConfig(generator="resnet_9blocks", skips=False)
    with pytest.raises(ValueError, match="gan_mode must be one of vanilla, lsgan"):
        TrainConfig(gan_mode="wgan")
    with pytest.raises(ValueError, match="discriminator must be one of multiscale, patchgan"):
        TrainConfig(discriminator="stylegan")
    with pytest.raises(TypeError, match="must be a pix2pix_tf.networks.Generator"):
        inputs = keras.Input((None, None, 3))
        Pix2Pix(keras.Model(inputs, inputs))


def test_cli_flags_are_derived_from_the_config():
    from pix2pix_tf.cli.train import config_from_args, parser

    args = parser().parse_args(["--generator", "resnet_6blocks", "--no-dropout", "--gan-mode",
                                "lsgan", "--discriminator", "multiscale", "--num-scales-d", "2"])
    config = config_from_args(args)
    assert (config.generator, config.dropout, config.gan_mode, config.num_scales_d) == (
        "resnet_6blocks", False, "lsgan", 2)
    help_text = parser().format_help()
    for name in list(GENERATORS) + list(DISCRIMINATORS):
        assert name in help_text
    with pytest.raises(SystemExit):
        parser().parse_args(["--norm", "layer"])


# ------------------------------------------------------------------ a generator with a condition
@register_generator("test_tinted")
def tinted_generator(input_channels=3, output_channels=3, *, ngf=4, seed=None):
    """A small generator with a second named input: a per-image tint added before the net."""
    image = keras.Input((None, None, input_channels), name="image")
    tint = keras.Input((input_channels,), name="tint")
    shift = keras.layers.Reshape((1, 1, input_channels))(tint)
    x = keras.layers.Add()([image, shift])
    x = keras.layers.Conv2D(ngf, 3, strides=2, padding="same", activation="relu",
                            kernel_initializer=keras.initializers.RandomNormal(0, 0.02, seed))(x)
    x = keras.layers.Conv2DTranspose(output_channels, 4, strides=2, padding="same")(x)
    out = keras.layers.Activation("tanh", dtype="float32")(x)
    return Generator({"image": image, "tint": tint}, out, size_multiple=2, name="tinted")


@register_generator("test_tiny")
def tiny_generator(input_channels=3, output_channels=3, *, ngf=4, seed=None):
    """A registered custom generator with no other code in the package."""
    image = keras.Input((None, None, input_channels), name="image")
    x = keras.layers.Conv2D(ngf, 4, strides=2, padding="same",
                            kernel_initializer=keras.initializers.RandomNormal(0, 0.02, seed))(image)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Conv2DTranspose(output_channels, 4, strides=2, padding="same")(x)
    return Generator(image, keras.layers.Activation("tanh", dtype="float32")(x), size_multiple=2)


def test_structured_inputs_flow_from_data_to_model_to_export(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    tints = rng.uniform(-0.5, 0.5, (4, 3)).astype("float32")
    pairs = load_paired_dataset(({"image": images, "tint": tints}, -images), batch_size=2,
                                crop_size=16, load_size=16, multiple=2, augment=False)
    x, y = next(iter(pairs))
    assert set(x) == {"image", "tint"} and x["tint"].shape == (2, 3)
    model = Pix2Pix(build_generator("test_tinted", 3, 3, seed=0),
                    build_discriminator("patchgan", 3, 3, ndf=4, n_layers=1, seed=1),
                    inference_mode="deterministic")
    model.compile()
    model.fit(pairs, epochs=1, verbose=0)
    assert set(model.evaluate(pairs, return_dict=True, verbose=0)) == {
        "l1", "psnr", "ssim", "grid", "sharp"}
    bare = model({"image": images[:1], "tint": tints[:1]})
    other = model({"image": images[:1], "tint": tints[1:2]})
    assert not np.allclose(bare, other)  # the condition matters
    out = translate(model, images[0, :15, :13], conditions={"tint": tints[0]})  # any size
    assert out.shape == (15, 13, 3)
    reports = export_model(model, tmp_path, ["saved_model", "tflite_float32", "onnx"], image_size=(16, 16),
                           test_images=images, verbose=False)
    assert {r.name for r in reports} == {"saved_model", "tflite_float32", "onnx (opset 17)"}
    assert all("also takes ['tint']" in r.notes[0] for r in reports)
    loaded = tf.saved_model.load(str(tmp_path / "saved_model" / "pix2pix" / "1"))
    served = loaded.signatures["serving_default"](images=tf.constant(images[:1]),
                                                  tint=tf.constant(tints[:1]))["output"]
    np.testing.assert_allclose(served, bare, atol=1e-5)


def test_custom_registered_generator_plugs_into_train_predict_and_export(tmp_path):
    from PIL import Image

    from pix2pix_tf.training import train

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    config = preset("quick", generator="test_tiny", run_dir=str(tmp_path / "run"),
                    crop_size=16, load_size=18, ndf=4, n_layers_d=1, epochs=1, epochs_decay=0,
                    samples=0, ngf=4)
    result = train(config, train_data=(x, -x), test_data=(x, -x), verbose=0)
    model = load_model(result["model"])
    assert model.generator.size_multiple == 2 and model.training_config["generator"] == "test_tiny"
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (11, 9, 3), dtype=np.uint8)).save(photo)
    from pix2pix_tf.cli import predict

    assert predict.main(["--model", str(result["model"]), "--input", str(photo), "--output",
                         str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "photo.png").size == (9, 11)
    reports = export_model(model, tmp_path / "exports", ["saved_model", "tflite_float32", "onnx"], image_size=(16, 16),
                           test_images=x[:2], verbose=False)
    assert all(r.max_abs_diff < 1e-4 for r in reports)


# --------------------------------------------------------------------------------- data sources
def test_a_tfds_source_resumes_exactly(tmp_path):
    import tarfile

    import tensorflow_datasets as tfds
    from test_tfds_builder import make_dataset_tree

    from pix2pix_tf.data.tfds_pix2pix import Pix2pix

    tree = make_dataset_tree(tmp_path / "src", splits={"train": 6, "val": 1, "test": 1})
    manual = tmp_path / "manual"
    manual.mkdir()
    with tarfile.open(manual / "facades.tar.gz", "w:gz") as archive:
        archive.add(tree / "facades", arcname="facades")
    Pix2pix(config="facades", data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))

    def epochs(start, count):
        counter = tf.Variable(start, dtype=tf.int64)
        ds = load_paired_dataset("pix2pix/facades", "train", crop_size=32, load_size=40,
                                 multiple=32, seed=5, epoch=counter,
                                 data_dir=str(tmp_path / "tfds"))
        return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(count)]

    straight = epochs(0, 3)
    assert not np.array_equal(straight[0], straight[1])  # reshuffled and re-jittered
    resumed = epochs(1, 2)  # a run restarted at epoch 1
    np.testing.assert_array_equal(resumed[0], straight[1])
    np.testing.assert_array_equal(resumed[1], straight[2])
    splits = available_splits("pix2pix/facades", data_dir=str(tmp_path / "tfds"))
    assert splits == ["train", "val", "test"]


def test_validation_split_is_chosen_explicitly_and_never_swallowed(tmp_path, capsys):
    from PIL import Image

    from pix2pix_tf.training import validation_source

    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)).save(flat / f"{i}.png")
    assert available_splits(flat) == []
    assert validation_source(preset("quick", data=str(flat))) is None
    assert "no test/ or val/ split" in capsys.readouterr().out
    assert available_splits("demo") == ["train", "test"]
    split = tmp_path / "split"
    (split / "train").mkdir(parents=True)
    (split / "val").mkdir()
    Image.fromarray(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)).save(split / "train" / "a.png")
    (split / "val" / "broken.png").write_bytes(b"")
    with pytest.raises(DataError, match="broken.png: empty file"):
        validation_source(preset("quick", data=str(split)))


@pytest.mark.slow
def test_export_tflite_with_no_other_argument_after_a_default_run(tmp_path):
    """As the user types it: train (tiny), then ``python -m pix2pix_tf.export --tflite``."""
    from test_cli import TINY, make_pairs

    data = make_pairs(tmp_path / "data")
    trained = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.train", "--data", str(data), "--epochs", "1",
         "--epochs-decay", "0", *TINY], cwd=tmp_path, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]
    exported = subprocess.run([sys.executable, "-m", "pix2pix_tf.export", "--tflite"],
                              cwd=tmp_path, capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr[-2000:]
    out = exported.stdout
    assert "exporting runs/quick/model.keras (the newest run's model)" in out
    assert "calibrating full-int8 TFLite on the training data" in out
    for kind in ("float32", "float16", "dynamic_int8", "int8"):
        assert f"tflite_{kind}" in out
        assert (tmp_path / "exports" / "quick" / f"pix2pix_{kind}.tflite").is_file()


def test_a_preset_network_option_gives_way_to_a_chosen_network():
    """The quick preset's --up-init is the U-Net's: choosing a ResNet drops it, not the run;
    set by the user, it is refused with the reason."""
    from pix2pix_tf.config import preset

    assert preset("quick").up_init == "bilinear"
    assert preset("quick", generator="resnet_9blocks").up_init == "normal"
    with pytest.raises(ValueError, match="--up-init 'bilinear' does not apply to 'resnet_9blocks'"):
        preset("quick", generator="resnet_9blocks", up_init="bilinear")


def test_every_source_kind_opens_lists_and_batches_its_example(source_kind, tmp_path):
    """A registered kind of data, from its own small example: claimed by that kind and no
    other, its splits listed and opened, a record in [0, 1], a training batch made."""
    from pix2pix_tf.data import pair_pipeline, sources

    kind = sources.SOURCE_KINDS[source_kind]
    assert kind.example is not None, f"register {source_kind!r} with example=... for the tests"
    data, options = kind.example(tmp_path)
    assert sources._kind_of(data) is kind
    splits = sources.available_splits(data, **options)
    assert set(splits) <= {"train", "val", "test"}
    for split in splits or ["train"]:
        source = sources.open_source(data, split, **options)
        assert len(source) >= 1, split
        record = source.load(tf.constant(0)) if source.random_access else next(iter(
            source.stream(None)))
        a, b = record["a"].numpy(), record["b"].numpy()
        assert a.ndim == 3 and a.shape[-1] == source.a_channels and b.shape[-1] == \
            source.b_channels
        assert a.dtype == b.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    batch = next(iter(pair_pipeline(source, batch_size=1, preprocess="crop", crop_size=16,
                                    multiple=8)))
    inputs, targets = batch
    image = inputs["image"] if isinstance(inputs, dict) else inputs
    assert image.shape == targets.shape == (1, 16, 16, source.b_channels)


#: Small networks for the task checks (any task's preset, the shared U-Net and PatchGAN).
SMALL_NETWORKS = dict(generator="unet", num_downs=3, ngf=4, ndf=4, n_layers_d=1, crop_size=16,
                      load_size=20, batch_size=2)


def test_every_task_builds_trains_round_trips_and_exports(task_name, tmp_path):
    """A registered task, from its default preset with small networks and its default data
    (bundled for every built-in task): the model trains a step, saves and loads with the same
    outputs, and exports to ONNX matching Keras, conditions included."""
    from pix2pix_tf import TASKS
    from pix2pix_tf.data import pair_pipeline
    from pix2pix_tf.training import build_model, model_channels, pipeline_options

    task = TASKS[task_name]
    config = preset(task.default_preset, **SMALL_NETWORKS, run_dir=str(tmp_path / "run"))
    source = task.open_data(config, config.data, "train")
    model = build_model(config, *model_channels(config, source), 10, train_source=source)
    data = pair_pipeline(source, **{**pipeline_options(config),
                                    "multiple": model.generator.size_multiple}).take(1)
    model.fit(data, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    examples = task.export_examples(again, (16, 16), 2)  # the task's own real examples
    inputs = {"image": examples.images,
              **task.network_conditions(again, examples.conditions)}
    for one in (model, again):
        one.inference_mode = "deterministic"
    assert np.array_equal(model.generator(inputs, training=False),
                          again.generator(inputs, training=False))
    reports = export_model(again, tmp_path / "out", ["onnx"], image_size=(16, 16),
                           test_images=examples.images, test_conditions=examples.conditions,
                           verbose=False)
    assert reports[-1].max_abs_diff < 1e-4, reports[-1]


def test_one_source_mechanism_the_built_ins_registered_like_any_other(monkeypatch):
    """Arrays, TFDS names and folders are kinds in SOURCE_KINDS like a registered one; a kind
    registered later is tried before the built-in catch-alls (the folder kind claims any
    path), and options no kind names are refused."""
    from pix2pix_tf.data import sources

    assert {"arrays", "tfds", "folder"} <= set(sources.SOURCE_KINDS)
    assert all(sources.SOURCE_KINDS[k].last for k in ("arrays", "tfds", "folder"))
    opened = []
    monkeypatch.setitem(sources.SOURCE_KINDS, "memo", sources.SourceKind(
        "memo", lambda data: isinstance(data, str) and data.startswith("memo:"),
        lambda data, split, note=None: opened.append((data, split, note)) or "a source",
        lambda data, note=None: ["train"], options=("note",)))
    assert sources.open_source("memo:x", "test", note=1, crop_size=32) == "a source"
    assert opened == [("memo:x", "test", 1)]  # only its own options reach it
    assert sources.available_splits("memo:x") == ["train"]
    assert sources.available_splits("demo") == ["train", "test"]  # the folder kind
    with pytest.raises(TypeError, match="unknown options colour"):
        sources.open_source("demo", colour="red")
