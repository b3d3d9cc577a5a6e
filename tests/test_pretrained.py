"""The authors' PyTorch generators: the torch-free reader, the strict mapping, parity with PyTorch
outputs (fixtures made by tests/fixtures/make_torch_unet.py), download/cache, and the commands."""

import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from pix2pix_tf import Pix2Pix
from pix2pix_tf.inference import inference_mode, load_model
from pix2pix_tf.networks import as_generator
from pix2pix_tf.tasks.translate.pretrained import PRETRAINED, PretrainedError, load_pretrained, unet_from_torch
from pix2pix_tf.tasks.translate.torch_checkpoint import LEGACY_MAGIC, CheckpointError, read_state_dict

FIXTURES = Path(__file__).parent / "fixtures" / "torch_unet"
FORMATS = ["unet_zip.pth", "unet_legacy.pth"]


@pytest.fixture(scope="module")
def reference():
    data = np.load(FIXTURES / "outputs.npz")
    return {k: data[k] for k in data.files}


def run(model, image, mode):
    with inference_mode(model, mode):
        x = image.astype("float32")[None] / 127.5 - 1.0
        return keras.ops.convert_to_numpy(model(x, training=False))[0]


@pytest.mark.parametrize("file", FORMATS)
def test_both_formats_read_the_same_tensors(file):
    tensors = read_state_dict(FIXTURES / file)
    zipped = read_state_dict(FIXTURES / "unet_zip.pth")
    assert all(np.array_equal(tensors[k], zipped[k]) for k in tensors)
    # the legacy file has no num_batches_tracked, like the authors' 2017-2018 checkpoints
    assert any(k.endswith("num_batches_tracked") for k in tensors) == (file == "unet_zip.pth")
    assert tensors["model.model.0.weight"].dtype == np.float32


@pytest.mark.parametrize("file", FORMATS)
def test_outputs_match_pytorch(file, reference):
    model = Pix2Pix.from_pretrained(FIXTURES / file)
    generator = as_generator(model)
    assert generator.size_multiple == 2 ** int(reference["num_downs"])
    assert generator.get_layer("down1_conv").filters == int(reference["ngf"])
    # the reference test script's default (per-image statistics), dropout off; and --eval
    for mode in ("deterministic", "moving_average"):
        out = run(model, reference["image"], mode)
        assert np.abs(out - reference[mode]).max() <= 1e-4, mode
    # 'paper' keeps the reference's dropout, in the reference's blocks: it changes the output
    assert np.abs(run(model, reference["image"], "paper") - reference["deterministic"]).max() > 1e-3
    assert model.inference_mode == "paper"


def test_gpu_saved_legacy_checkpoints_read_the_same(tmp_path):
    """The authors trained on GPUs: their legacy files name torch.cuda storages on 'cuda:0'."""
    data = (FIXTURES / "unet_legacy.pth").read_bytes()
    gpu = data.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n").replace(
        b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    assert gpu != data
    (tmp_path / "gpu.pth").write_bytes(gpu)
    ours, theirs = read_state_dict(FIXTURES / "unet_legacy.pth"), read_state_dict(tmp_path / "gpu.pth")
    assert list(ours) == list(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_reference_dropout_layout():
    tensors = read_state_dict(FIXTURES / "unet_zip.pth")
    generator = unet_from_torch(tensors)
    dropped = sorted(layer.name for layer in generator.layers if "dropout" in layer.name)
    assert dropped == ["up2_dropout", "up3_dropout", "up4_dropout"]  # the paper's: up1..up3


def test_converted_model_saves_and_loads_with_its_card(tmp_path, reference):
    model = Pix2Pix.from_pretrained(FIXTURES / "unet_zip.pth")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.model_card == model.model_card and loaded.model_card["name"] == "unet_zip"
    out = run(loaded, reference["image"], "deterministic")
    assert np.abs(out - reference["deterministic"]).max() <= 1e-4


def evil_pickle(marker):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return pickle.dumps({"weight": Evil()}, protocol=2)


def test_pickled_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(LEGACY_MAGIC) + pickle.dumps(1001)
                       + pickle.dumps({"little_endian": True}) + evil_pickle(marker))
    zipped = tmp_path / "zipped.pth"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("zipped/data.pkl", evil_pickle(marker))
    for path in (legacy, zipped):
        with pytest.raises(CheckpointError, match=r"system.*refusing") as error:
            read_state_dict(path)
        assert str(path) in str(error.value)
    assert not marker.exists()


def test_unreadable_files_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        read_state_dict(garbage)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((FIXTURES / "unet_legacy.pth").read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(truncated)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/other.txt", "hello")
    (tmp_path / "zip.pth").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="data.pkl"):
        read_state_dict(tmp_path / "zip.pth")


def test_missing_extra_and_misshaped_keys_are_named():
    tensors = read_state_dict(FIXTURES / "unet_zip.pth")
    key = "model.model.1.model.3.model.2.running_var"
    with pytest.raises(PretrainedError, match=f"missing {key}"):
        unet_from_torch({k: v for k, v in tensors.items() if k != key})
    with pytest.raises(PretrainedError, match="unexpected model.model.9.weight"):
        unet_from_torch({**tensors, "model.model.9.weight": np.zeros(3, "float32")})
    bad = dict(tensors)
    bad["model.model.3.weight"] = np.zeros((4, 3, 3, 3), "float32")
    with pytest.raises(PretrainedError, match=r"model\.model\.3\.weight has shape \(4, 3, 3, 3\)"):
        unet_from_torch(bad)


@pytest.fixture
def mirror(tmp_path):
    """A file:// 'server' holding the fixture under a published name, and an empty cache."""
    served = tmp_path / "server"
    served.mkdir()
    shutil.copy(FIXTURES / "unet_legacy.pth", served / "sat2map.pth")
    return served.as_uri() + "/", tmp_path / "cache"


def test_published_name_downloads_once_and_carries_its_card(mirror, reference):
    base_url, cache = mirror
    model = load_pretrained("sat2map", base_url=base_url, cache_dir=cache)
    assert model.model_card == PRETRAINED["sat2map"].to_dict()
    assert model.model_card["direction"] == "AtoB" and model.model_card["dataset"] == "maps"
    cached = cache / "models" / "pix2pix_tf" / "sat2map.pth"
    assert cached.is_file() and (cached.parent / "sat2map.pth.sha256").is_file()
    os.remove(Path(base_url.removeprefix("file://")) / "sat2map.pth")  # now "offline"
    again = load_pretrained("sat2map", base_url=base_url, cache_dir=cache)  # from the cache
    assert np.abs(run(again, reference["image"], "deterministic")
                  - reference["deterministic"]).max() <= 1e-4
    with open(cached, "r+b") as f:  # the cached file changes behind our back
        f.seek(-1, os.SEEK_END)
        f.write(b"\x00")
    with pytest.raises(PretrainedError, match="has changed since it was first loaded"):
        load_pretrained("sat2map", base_url=base_url, cache_dir=cache)


def test_offline_and_unknown_names_say_what_to_do(mirror):
    base_url, cache = mirror
    with pytest.raises(PretrainedError, match=r"Could not download .*'map2sat'.*map2sat\.pth"):
        load_pretrained("map2sat", base_url=base_url, cache_dir=cache)
    assert not (cache / "models" / "pix2pix_tf" / "map2sat.pth").exists()
    with pytest.raises(PretrainedError, match=r"neither a published model \(facades_label2photo"):
        load_pretrained("horse2zebra", base_url=base_url, cache_dir=cache)
    with pytest.raises(PretrainedError, match="neither a published model"):
        load_model("pretrained:/no/such/file.pth")


def test_commands_take_pretrained_models(tmp_path, reference, capsys):
    from pix2pix_tf.cli import evaluate, export, predict

    model = f"pretrained:{FIXTURES / 'unet_zip.pth'}"
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(reference["image"]).save(photos / "a.png")
    assert predict.main(["--model", model, "--input", str(photos), "--output",
                         str(tmp_path / "out"), "--inference-mode", "deterministic"]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "a.png"), "float32") / 127.5 - 1
    assert np.abs(written - reference["deterministic"]).max() <= 1 / 127.5 + 1e-4

    pairs = tmp_path / "pairs" / "test"
    pairs.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.concatenate([reference["image"][:, ::1 - 2 * i]] * 2, 1)).save(
            pairs / f"{i}.png")
    assert evaluate.main(["--model", model, "--data", str(tmp_path / "pairs"), "--output",
                          str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "metrics.json").is_file()
    capsys.readouterr()
    code = export.main([model, "--saved-model", "--tflite", "float32", "--onnx",
                        "--test-data", str(tmp_path / "pairs"), "--output", str(tmp_path / "x"),
                        "--inference-mode", "deterministic"])
    printed = capsys.readouterr().out
    assert code == 0 and "verified on 2 images" in printed, printed
    for name in ("pix2pix_float32.tflite", "pix2pix.onnx"):
        assert (tmp_path / "x" / name).is_file()
