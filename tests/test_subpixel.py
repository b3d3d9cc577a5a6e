"""The sub-pixel form of the up-convolutions, used for TFLite export."""

import collections

import keras
import numpy as np
import pytest

from pix2pix_tf import set_inference_mode, unet_generator
from pix2pix_tf.core.subpixel import SubpixelConv2DTranspose, replaceable, with_subpixel_upsampling
from pix2pix_tf.exporters import export_tflite, run_tflite


@pytest.mark.parametrize("use_bias", [True, False])
def test_layer_equals_conv2d_transpose(use_bias):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 7, 3)).astype("float32")  # odd, non-square: every phase and edge
    reference = keras.layers.Conv2DTranspose(4, 4, 2, padding="same", use_bias=use_bias,
                                             kernel_initializer="random_normal",
                                             bias_initializer="random_normal")
    expected = np.asarray(reference(x))
    layer = SubpixelConv2DTranspose(4, use_bias)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    got = np.asarray(layer(x))
    assert got.shape == expected.shape == (2, 10, 14, 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert layer.compute_output_shape((None, 5, 7, 3)) == (None, 10, 14, 4)


def test_only_the_covered_transposed_convolutions_are_replaced():
    assert replaceable(keras.layers.Conv2DTranspose(4, 4, 2, padding="same"))
    assert not replaceable(keras.layers.Conv2DTranspose(4, 3, 2, padding="same"))
    assert not replaceable(keras.layers.Conv2DTranspose(4, 4, 2, padding="valid"))
    assert not replaceable(keras.layers.Conv2DTranspose(4, 4, 2, padding="same",
                                                        activation="relu"))


def test_rewritten_generator_computes_the_same_function(tmp_path):
    generator = unet_generator(3, 3, ngf=8, num_downs=4, seed=3)
    set_inference_mode(generator, "deterministic")
    rewritten = with_subpixel_upsampling(generator)
    kinds = collections.Counter(type(layer).__name__ for layer in rewritten.layers)
    assert kinds["SubpixelConv2DTranspose"] == 4 and kinds["Conv2DTranspose"] == 0
    x = np.random.default_rng(1).uniform(-1, 1, (2, 48, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(rewritten(x, training=False)),
                               np.asarray(generator(x, training=False)), atol=1e-5)
    # and in TFLite, with no TRANSPOSE_CONV left
    path = export_tflite(generator, tmp_path / "g.tflite", "float32", image_size=(48, 32))
    from ai_edge_litert.interpreter import Interpreter

    ops = {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}
    assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops
    outputs, _ = run_tflite(path, x)
    np.testing.assert_allclose(outputs, np.asarray(generator(x, training=False)), atol=1e-4)
    plain = export_tflite(generator, tmp_path / "t.tflite", "float32", image_size=(48, 32),
                          subpixel=False)
    ops = {op["op_name"] for op in Interpreter(model_path=str(plain))._get_ops_details()}
    assert "TRANSPOSE_CONV" in ops
