"""Export: every format's parity with Keras on a tiny model, and every signature's contract."""

import base64
import importlib.util
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_model
from PIL import Image

from pix2pix_tf.cli.export import main
from pix2pix_tf.data import DataError
from pix2pix_tf.exporters import (
    TARGETS,
    export_model,
    export_saved_model,
    export_tflite,
    run_tflite,
    serving,
)
from pix2pix_tf.exporters.targets import DEFAULT_FORMATS
from pix2pix_tf.inference import inference_mode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))
import client  # noqa: E402

SIZE = (32, 32)


def deterministic(model, x):
    """What the exports compute: the model in the deterministic inference mode."""
    with inference_mode(model, "deterministic"):
        return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    m = tiny_model(seed=4)  # num_downs=3 -> multiple 8
    m.compile()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    m.fit(tf.data.Dataset.from_tensor_slices((x, -x)).batch(2), epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    m.save(path)
    return keras.models.load_model(path), path


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    # smooth images, closer to real photos than noise
    base = rng.uniform(-1, 1, (6, 8, 8, 3)).astype("float32")
    x = tf.image.resize(base, SIZE, method="bicubic").numpy().clip(-1, 1)
    return x, -x


@pytest.fixture(scope="module")
def exported(model, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    x, y = images
    assert model[0].inference_mode == "paper"
    reports = export_model(model[0], out, image_size=SIZE, calibration=list(x), test_images=x,
                           test_targets=y, verbose=False)
    assert model[0].inference_mode == "paper"  # exporting never changes the caller's model
    return out, {r.name: r for r in reports}


def test_every_format_matches_keras(exported, model):
    """Every default target of the table (a newly registered one too) is written and checked
    against Keras: float ones to 1e-4, quantised ones (16-bit or 8-bit) within 20 dB."""
    out, reports = exported
    labels = {TARGETS[name].label: name for name in DEFAULT_FORMATS}
    assert set(reports) == {"keras", *labels}
    assert {"saved_model", "tflite_float32", "tflite_int8", "onnx (opset 17)"} <= set(reports)
    for label, name in labels.items():
        if TARGETS[name].variant in (None, "float32"):
            assert reports[label].max_abs_diff < 1e-4, label
        else:
            r = reports[label]
            assert r.psnr_drop is not None and np.isfinite(r.psnr_drop)
            assert r.psnr_vs_keras > 20, label  # quantised, yet close to Keras
    # weights really are inside the files (a converter that leaves them as variables writes KB)
    weights = sum(int(np.prod(w.shape)) for w in model[0].generator.weights)
    assert reports["tflite_float32"].size_bytes > 3.5 * weights
    assert reports["tflite_float16"].size_bytes < 0.7 * reports["tflite_float32"].size_bytes
    # int8 weights are 4x smaller; in this tiny model the per-tensor metadata of the sub-pixel
    # up-convolutions' (4 kernels each) takes a good part of the file
    assert reports["tflite_int8"].size_bytes < 0.5 * reports["tflite_float32"].size_bytes
    assert all(r.latency_ms > 0 for r in reports.values())


def test_onnx_is_valid_and_dynamic_and_carries_the_config(exported, model, images):
    import onnx
    import onnxruntime

    path = exported[0] / "pix2pix.onnx"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["pix2pix_tf"])
    assert meta["inference_mode"] == "deterministic" and meta["size_multiple"] == 8
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).uniform(-1, 1, (2, 24, 40, 3)).astype("float32")
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(out, deterministic(model[0], x), atol=1e-4)  # size, batch 2


def test_onnx_subpixel_graph_is_the_same_function_without_transposed_convolutions(model, tmp_path):
    """``upsampling='subpixel'`` writes each up-convolution as four 2x2 Convs and a DepthToSpace
    (no ConvTranspose left), with the same weights stored once, and computes what Keras does at
    a size and batch it was not traced at."""
    import onnx
    import onnxruntime

    from pix2pix_tf.exporters.onnx import export_onnx

    x = np.random.default_rng(5).uniform(-1, 1, (2, 24, 40, 3)).astype("float32")
    expected = deterministic(model[0], x)
    files = {}
    for upsampling in ("transpose", "subpixel"):
        files[upsampling] = export_onnx(model[0], tmp_path / f"{upsampling}.onnx",
                                        upsampling=upsampling)
        ops = [n.op_type for n in onnx.load(str(files[upsampling])).graph.node]
        session = onnxruntime.InferenceSession(str(files[upsampling]),
                                               providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
        psnr = 10 * np.log10(4.0 / np.mean((out - expected) ** 2))
        assert psnr >= 60, (upsampling, psnr)
        if upsampling == "transpose":
            assert ops.count("ConvTranspose") == 3 and "DepthToSpace" not in ops
        else:
            assert "ConvTranspose" not in ops and ops.count("DepthToSpace") == 3, ops
    stored = {k: sum(np.prod(t.dims) for t in onnx.load(str(v)).graph.initializer
                     if t.data_type == onnx.TensorProto.FLOAT) for k, v in files.items()}
    weights = sum(int(np.prod(w.shape)) for w in model[0].generator.weights)
    assert stored["transpose"] <= stored["subpixel"] < 1.05 * weights, (stored, weights)
    with pytest.raises(Exception, match="upsampling must be one of transpose, subpixel"):
        export_onnx(model[0], tmp_path / "bad.onnx", upsampling="nearest")


def saved(exported):
    return tf.saved_model.load(str(exported[0] / "saved_model" / "pix2pix" / "1"))


def test_saved_model_layout_and_metadata(exported):
    root = exported[0] / "saved_model" / "pix2pix" / "1"
    assert (root / "saved_model.pb").is_file() and (root / "variables").is_dir()
    meta = json.loads((root / "assets.extra" / "pix2pix.json").read_text())
    assert meta["inference_mode"] == "deterministic"
    assert meta["model_config"]["lambda_l1"] == 100.0
    assert set(saved(exported).signatures) == {"serving_default", "uint8", "encoded"}


def test_float_and_uint8_signatures(exported, model):
    loaded = saved(exported)
    x = np.random.default_rng(5).uniform(-1, 1, (3, 16, 24, 3)).astype("float32")
    out = loaded.signatures["serving_default"](images=tf.constant(x))["output"].numpy()
    np.testing.assert_allclose(out, deterministic(model[0], x), atol=1e-5)
    # batch independence: each image alone gives the same result
    np.testing.assert_allclose(
        loaded.signatures["serving_default"](images=tf.constant(x[1:2]))["output"].numpy(),
        out[1:2], atol=1e-5)
    u8 = np.round((x + 1) * 127.5).astype(np.uint8)
    out8 = loaded.signatures["uint8"](images=tf.constant(u8))["output"].numpy()
    expected = np.round((np.clip(deterministic(model[0], u8 / 127.5 - 1.0), -1, 1) + 1) * 127.5)
    assert out8.dtype == np.uint8 and np.abs(out8.astype(int) - expected).max() <= 1


def png_bytes(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_encoded_signature_takes_any_size_jpeg_or_png(exported):
    loaded = saved(exported)
    rng = np.random.default_rng(6)
    data = [png_bytes(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)),
            png_bytes(rng.integers(0, 256, (20, 12, 3), dtype=np.uint8), "JPEG"),
            png_bytes(rng.integers(0, 256, (5, 3, 3), dtype=np.uint8))]
    out = loaded.signatures["encoded"](image_bytes=tf.constant(data))["output_bytes"].numpy()
    sizes = [Image.open(io.BytesIO(b)).size for b in out]
    assert sizes == [(50, 37), (12, 20), (3, 5)]


def test_wrong_shapes_are_errors_not_crashes(exported):
    loaded = saved(exported)
    with pytest.raises(tf.errors.InvalidArgumentError, match="height must be a multiple of 8"):
        loaded.signatures["serving_default"](images=tf.zeros((1, 20, 16, 3)))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)):
        loaded.signatures["serving_default"](images=tf.zeros((1, 16, 16, 1)))
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["encoded"](image_bytes=tf.constant([b"not an image"]))
    # the process is still alive and the model still serves
    ok = loaded.signatures["serving_default"](images=tf.zeros((1, 16, 16, 3)))["output"]
    assert ok.shape == (1, 16, 16, 3)


def bomb_png(width, height):
    """A well-formed PNG header declaring ``width`` x ``height`` RGB pixels, in 100 bytes."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def bomb_jpeg(width, height):
    """A small real JPEG whose frame header (SOF0) is rewritten to declare a huge size."""
    data = bytearray(png_bytes(np.full((8, 8, 3), 128, np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_encoded_signature_survives_hostile_requests(exported):
    loaded = saved(exported)
    encoded = loaded.signatures["encoded"]
    good = png_bytes(np.random.default_rng(7).integers(0, 256, (9, 11, 3), dtype=np.uint8))
    assert serving.declared_size(tf.constant(good))[0].numpy() == 9
    for bomb in (bomb_png(60000, 60000), bomb_jpeg(50000, 40000)):
        assert len(bomb) < 1000
        with pytest.raises(tf.errors.InvalidArgumentError, match="declares more than"):
            encoded(image_bytes=tf.constant([good, bomb]))
    jpeg = png_bytes(np.zeros((16, 16, 3), np.uint8), "JPEG")
    for junk in (b"", b"hello, not an image", good[: len(good) // 2], jpeg[: len(jpeg) // 2],
                 b"\x89PNG\r\n\x1a\n", b"GIF89a"):
        with pytest.raises(tf.errors.InvalidArgumentError):
            encoded(image_bytes=tf.constant([junk]))
    # still alive, still serving
    out = encoded(image_bytes=tf.constant([good]))["output_bytes"].numpy()
    assert Image.open(io.BytesIO(out[0])).size == (11, 9)


def test_paper_mode_exports_to_saved_model_only(model, tmp_path):
    with pytest.raises(DataError, match="only be exported to the SavedModel"):
        export_model(model[0], tmp_path / "a", inference_mode="paper", image_size=SIZE,
                     verbose=False)
    path = export_saved_model(model[0], tmp_path / "b", inference_mode="paper")
    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    x = tf.zeros((1, 16, 16, 3)) + 0.3
    assert not np.allclose(function(images=x)["output"], function(images=x)["output"])


def test_bad_inputs(model, images, tmp_path, capsys):
    with pytest.raises(DataError, match="needs calibration images"):
        export_tflite(model[0], tmp_path / "x.tflite", "int8", SIZE)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="cannot write to"):
        export_model(model[0], blocker / "sub", tflite=(), onnx=False, verbose=False)
    path = export_tflite(model[0], tmp_path / "f.tflite", "float32", SIZE)
    with pytest.raises(DataError, match=r"exported for 32x32x3 images but got 40x32x3.*--size"):
        run_tflite(path, np.zeros((1, 32, 40, 3), "float32"))
    # the command line: not a model, and a plain Keras model that is not pix2pix
    (tmp_path / "notes.keras").write_text("hello")
    assert main([str(tmp_path / "notes.keras"), "--onnx"]) == 2
    assert "not a loadable Keras model" in capsys.readouterr().err
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    assert main([str(tmp_path / "plain.keras"), "--onnx"]) == 2
    assert "not a pix2pix_tf model" in capsys.readouterr().err
    assert main([str(model[1]), "--tflite", "int8", "--size", "32"]) == 2
    assert "--calibration-data" in capsys.readouterr().err


def test_command_line_exports_and_verifies(model, tmp_path, capsys):
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(3):
        a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(data / f"{i}.png")
    code = main([str(model[1]), "--saved-model", "--tflite", "float32", "--size", "32",
                 "--test-data", str(tmp_path / "data"), "--output", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0 and "tflite_float32" in printed and "verified on 3 images" in printed
    assert (tmp_path / "out" / "pix2pix_float32.tflite").is_file()
    assert not (tmp_path / "out" / "pix2pix.onnx").exists()


def serve_rest(signature, payload):
    """What TF Serving does with a REST :predict body for a one-input signature."""
    inputs = [base64.b64decode(instance["b64"]) for instance in payload["instances"]]
    outputs = signature(image_bytes=tf.constant(inputs))["output_bytes"].numpy()
    return {"predictions": [{"b64": base64.b64encode(o).decode()} for o in outputs]}


def test_rest_client_against_the_exported_signature(exported):
    signature = saved(exported).signatures[client.SIGNATURE]
    inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
    assert set(inputs) == {client.INPUT} and inputs[client.INPUT].dtype == tf.string
    assert set(outputs) == {client.OUTPUT}  # '_bytes' suffix: REST returns base64
    image = np.random.default_rng(7).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    payload = json.loads(json.dumps(client.rest_payload([png_bytes(image)])))
    assert payload["signature_name"] == "encoded"
    (png,) = client.rest_outputs(json.loads(json.dumps(serve_rest(signature, payload))))
    assert Image.open(io.BytesIO(png)).size == (41, 30)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_serving") is None,
                    reason="tensorflow-serving-api is not installed (its gRPC request protos: "
                           "pip install --no-deps tensorflow-serving-api)")
def test_grpc_client_against_the_exported_signature(exported):
    request = client.grpc_request([png_bytes(np.zeros((9, 9, 3), np.uint8))], "pix2pix")
    request = type(request).FromString(request.SerializeToString())  # over the wire
    assert request.model_spec.signature_name == "encoded"
    signature = saved(exported).signatures[request.model_spec.signature_name]
    tensors = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    result = signature(**tensors)
    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    for key, value in result.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    (png,) = client.grpc_outputs(response)
    assert Image.open(io.BytesIO(png)).size == (9, 9)
