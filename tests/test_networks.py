import json

import keras
import numpy as np
import pytest
from helpers import trainable

from pix2pix_tf import patchgan_discriminator, receptive_field, unet_generator
from pix2pix_tf.core.layers import BatchNorm, Dropout, InstanceNorm


def as_json(config):
    return json.loads(json.dumps(config))


def reference_unet_count(cin, cout, ngf=64, num_downs=8, norm="batch", skips=True):
    """Parameter count of the reference (PyTorch) U-Net, derived from its block structure."""
    bias = norm != "batch"
    affine = 2 if norm == "batch" else 0
    filters = [ngf * min(2**i, 8) for i in range(num_downs)]
    total = cin * filters[0] * 16 + (filters[0] if bias else 0)  # outermost down, no norm
    for i in range(1, num_downs):
        innermost = i == num_downs - 1
        total += filters[i - 1] * filters[i] * 16 + (filters[i] if bias else 0)
        if not innermost:
            total += affine * filters[i]
        # decoder block restoring level i-1: input is inner features (+ skip unless innermost)
        cin_up = filters[i] * (2 if (skips and not innermost) else 1)
        total += cin_up * filters[i - 1] * 16 + (filters[i - 1] if bias else 0)
        total += affine * filters[i - 1]
    total += filters[0] * (2 if skips else 1) * cout * 16 + cout  # output conv, with bias
    return total


def test_paper_generator_has_reference_parameter_count():
    assert trainable(unet_generator(3, 3)) == 54_413_955
    assert trainable(unet_generator(3, 3, num_downs=7)) == 41_828_995  # unet_128


def test_paper_discriminator_has_reference_parameter_count():
    assert trainable(patchgan_discriminator(3, 3)) == 2_768_705


@pytest.mark.parametrize(
    "cin,cout,ngf,num_downs,norm,skips",
    [
        (3, 3, 64, 8, "batch", False),
        (1, 3, 16, 5, "batch", True),
        (3, 1, 16, 4, "instance", True),
        (4, 2, 8, 3, "none", True),
        (3, 3, 8, 3, "none", False),
    ],
)
def test_generator_variants_count_and_shape(cin, cout, ngf, num_downs, norm, skips):
    g = unet_generator(cin, cout, ngf=ngf, num_downs=num_downs, norm=norm, skips=skips)
    assert trainable(g) == reference_unet_count(cin, cout, ngf, num_downs, norm, skips)
    size = 2**num_downs
    out = g(np.zeros((2, size, 2 * size, cin), "float32"))
    assert out.shape == (2, size, 2 * size, cout)


def test_generator_is_fully_convolutional_and_outputs_tanh_range():
    g = unet_generator(3, 3, ngf=8, num_downs=3)
    for shape in [(1, 8, 8, 3), (3, 24, 40, 3)]:
        out = keras.ops.convert_to_numpy(g(np.random.uniform(-50, 50, shape).astype("float32")))
        assert out.shape == shape
        assert np.all(np.abs(out) <= 1.0)


def test_generator_follows_the_paper_layer_by_layer():
    g = unet_generator(3, 3)
    layers = {layer.name: layer for layer in g.layers}
    # LeakyReLU 0.2 in the encoder, ReLU in the decoder, tanh out.
    assert all(
        layers[f"down{i}_lrelu"].negative_slope == pytest.approx(0.2) for i in range(2, 9)
    )
    assert layers["output_tanh"].activation.__name__ == "tanh"
    # No norm on the first and the innermost layer; norm everywhere else.
    norms = {name for name, layer in layers.items() if isinstance(layer, BatchNorm)}
    assert "down1_norm" not in norms and "down8_norm" not in norms
    assert norms == {f"down{i}_norm" for i in range(2, 8)} | {f"up{j}_norm" for j in range(1, 8)}
    # No bias with BatchNorm, except the output layer.
    biased = {layer.name for layer in g.layers if getattr(layer, "use_bias", False)}
    assert biased == {"output_conv"}
    # Dropout 0.5 in exactly the first three decoder blocks.
    drops = {layer.name: layer.rate for layer in g.layers if isinstance(layer, Dropout)}
    assert drops == {"up1_dropout": 0.5, "up2_dropout": 0.5, "up3_dropout": 0.5}
    # N(0, 0.02) initialisation; BatchNorm gamma N(1, 0.02), beta 0.
    kernel = layers["down5_conv"].kernel.numpy()
    assert abs(kernel.mean()) < 1e-3 and kernel.std() == pytest.approx(0.02, rel=0.02)
    gamma = layers["down5_norm"].gamma.numpy()
    assert gamma.mean() == pytest.approx(1.0, abs=0.01) and gamma.std() == pytest.approx(
        0.02, rel=0.25
    )
    assert np.all(layers["down5_norm"].beta.numpy() == 0)
    # Skip connections concatenate the mirrored encoder activation.
    assert layers["up1_skip"].output.shape[-1] == 1024


def test_generator_without_dropout_or_skips():
    g = unet_generator(3, 3, ngf=8, num_downs=3, dropout=False, skips=False)
    assert not any(isinstance(layer, Dropout) for layer in g.layers)
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in g.layers)
    assert g.name == "encoder_decoder_8"


def test_instance_norm_variant_is_non_affine_instance_norm():
    g = unet_generator(3, 3, ngf=8, num_downs=3, norm="instance")
    norms = [layer for layer in g.layers if isinstance(layer, InstanceNorm)]
    assert norms and all(not n.center and not n.scale for n in norms)
    x = np.random.default_rng(0).normal(3, 5, (1, 16, 16, 16)).astype("float32")
    y = keras.ops.convert_to_numpy(norms[0](x))
    assert np.allclose(y.mean(axis=(1, 2)), 0, atol=1e-4)
    assert np.allclose(y.std(axis=(1, 2)), 1, atol=1e-3)


@pytest.mark.parametrize(
    "n_layers,field,out", [(0, 1, 256), (1, 16, 126), (2, 34, 62), (3, 70, 30), (4, 142, 14),
                           (5, 286, 6)]
)
def test_receptive_field_table(n_layers, field, out):
    d = patchgan_discriminator(3, 3, ndf=8, n_layers=n_layers)
    assert receptive_field(d) == field
    x = np.zeros((1, 256, 256, 3), "float32")
    assert d([x, x]).shape == (1, out, out, 1)


def test_receptive_field_is_measured_not_assumed():
    # One output logit depends on exactly `field` x `field` input pixels: perturb a pixel just
    # inside and just outside the field of the centre logit and see which changes it.
    d = patchgan_discriminator(1, 1, ndf=4, n_layers=2, norm="none", seed=0)
    field = receptive_field(d)
    x = np.zeros((1, 128, 128, 1), "float32")
    base = d([x, x]).numpy()
    changed = set()
    for col in range(128):
        y = x.copy()
        y[0, 64, col, 0] = 1.0
        diff = np.abs(d([x, y]).numpy() - base)[0, :, :, 0]
        if diff[:, 15].max() > 0:
            changed.add(col)
    assert len(changed) == field


def test_unconditional_discriminator_sees_only_the_image():
    d = patchgan_discriminator(3, 3, ndf=8, n_layers=1, conditional=False)
    assert len(d.inputs) == 1
    assert d(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 14, 14, 1)


def test_non_divisible_size_is_a_clear_error_at_build_and_call():
    with pytest.raises(ValueError, match=r"divisible by 256.*got 300x256.*256 or 512"):
        unet_generator(3, 3, image_size=(300, 256))
    g = unet_generator(3, 3, ngf=8, num_downs=4)
    with pytest.raises(ValueError, match=r"divisible by 16.*got 20x32.*smaller num_downs"):
        g(np.zeros((1, 20, 32, 3), "float32"))


def test_wrong_channel_count_is_a_clear_error():
    g = unet_generator(3, 3, ngf=8, num_downs=3)
    with pytest.raises(ValueError, match=r"built for 3-channel images but got 1.*input_channels=1"):
        g(np.zeros((1, 16, 16, 1), "float32"))
    d = patchgan_discriminator(3, 1, ndf=8, n_layers=1)
    with pytest.raises(ValueError, match=r"built for 1-channel images but got 3"):
        d([np.zeros((1, 16, 16, 3), "float32"), np.zeros((1, 16, 16, 3), "float32")])


def test_same_seed_same_weights_different_seed_different():
    a = unet_generator(3, 3, ngf=8, num_downs=3, seed=7)
    b = unet_generator(3, 3, ngf=8, num_downs=3, seed=7)
    c = unet_generator(3, 3, ngf=8, num_downs=3, seed=8)
    assert all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a.weights, b.weights))
    assert not np.array_equal(a.weights[0].numpy(), c.weights[0].numpy())
    # Distinct layers get distinct draws even with one base seed.
    k2, k3 = a.get_layer("down2_conv").kernel.numpy(), a.get_layer("up2_conv").kernel.numpy()
    assert not np.allclose(k2.ravel()[:50], k3.ravel()[:50])


def test_networks_save_and_load_safely(tmp_path):
    g = unet_generator(1, 3, ngf=8, num_downs=3, inference_mode="deterministic", seed=2)
    d = patchgan_discriminator(1, 3, ndf=8, n_layers=0, norm="instance", seed=3)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    y = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    for model, args in ((g, x), (d, [x, y])):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        assert as_json(loaded.get_config()) == as_json(model.get_config())
        np.testing.assert_array_equal(loaded(args, training=False), model(args, training=False))


def test_pixel_head_adds_a_full_resolution_path_that_sees_the_input():
    from pix2pix_tf import unet_generator

    plain = unet_generator(ngf=4, num_downs=3, seed=0)
    headed = unet_generator(ngf=4, num_downs=3, pixel_head=8, seed=0)
    names = {layer.name for layer in headed.layers}
    assert {"pixel_skip", "pixel1_conv", "pixel2_conv", "pixel_out_conv"} <= names
    assert not {"pixel_skip", "pixel1_conv"} & {layer.name for layer in plain.layers}
    assert headed.get_layer("pixel_skip").output.shape[-1] == 3 + 8  # the image + features
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    assert headed(x).shape == (1, 16, 16, 3)
    with pytest.raises(ValueError, match="pixel_head must be >= 0"):
        unet_generator(pixel_head=-1)


def test_pixel_noise_is_fresh_in_training_and_a_fixed_field_that_exports_exactly(tmp_path):
    """--pixel-noise: N(0, 1) channels at full resolution in the pixel head; drawn anew in
    training and in the paper's inference mode, a fixed prime-period field otherwise (the same
    in Keras, after reloading and in ONNX), and the output depends on it."""
    from pix2pix_tf import Pix2Pix
    from pix2pix_tf.core.layers import PixelNoise
    from pix2pix_tf.exporters.onnx import export_onnx, run_onnx
    from pix2pix_tf.inference import inference_mode

    x = np.random.default_rng(3).uniform(-1, 1, (2, 24, 40, 3)).astype("float32")
    generator = unet_generator(ngf=4, num_downs=3, pixel_head=8, pixel_kernel=3, pixel_noise=2,
                               seed=0, inference_mode="deterministic")
    noise = generator.get_layer("pixel_noise")
    assert isinstance(noise, PixelNoise) and noise.field.shape == (251, 251, 2)
    fixed = generator(x, training=False).numpy()
    np.testing.assert_array_equal(generator(x, training=False), fixed)  # repeatable
    drawn = [generator(x, training=True).numpy() for _ in range(2)]
    assert np.abs(drawn[0] - drawn[1]).mean() > 1e-3  # fresh noise every training call
    field = noise(x, training=False).numpy()
    np.testing.assert_array_equal(field[0], field[1])  # one field for every image
    np.testing.assert_array_equal(field[0], np.asarray(noise.field)[:24, :40])
    big = noise(np.zeros((1, 300, 260, 3), "float32"), training=False).numpy()[0]
    np.testing.assert_array_equal(big[251:], big[:49])  # repeats at the prime period
    assert abs(field.std() - 1) < 0.1

    model = Pix2Pix(generator, None, lambda_gan=0.0, inference_mode="deterministic")
    with inference_mode(model, "paper"):
        assert np.abs(generator(x, training=False).numpy() - fixed).mean() > 1e-3
    path = tmp_path / "noise.keras"
    generator.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded(x, training=False), fixed)
    onnx_out, _ = run_onnx(export_onnx(model, tmp_path / "noise.onnx"), x)
    np.testing.assert_allclose(onnx_out, fixed, atol=1e-4)
    plain = unet_generator(ngf=4, num_downs=3, pixel_noise=2, seed=0,
                           inference_mode="deterministic")  # before the last up-convolution
    assert plain.get_layer("pixel_noise").output.shape[1:] == (None, None, 2)
    assert plain.get_layer("output_conv").input.shape[-1] == 4 + 4 + 2  # skip, decoder, noise
    model = Pix2Pix(plain, None, lambda_gan=0.0, inference_mode="deterministic")
    onnx_out, _ = run_onnx(export_onnx(model, tmp_path / "plain.onnx"), x)
    np.testing.assert_allclose(onnx_out, plain(x, training=False), atol=1e-4)


def test_colour_transform_starts_at_the_identity_and_holds_affine_colour_maps_exactly(tmp_path):
    from pix2pix_tf.core.layers import ColourTransform
    from pix2pix_tf.tasks.instruct.edits import EDITS

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    layer = ColourTransform(3)
    zero = np.zeros((2, 8, 8, 12), "float32")
    np.testing.assert_allclose(layer([zero, x]), x, atol=1e-6)  # no coefficients: the input
    # grayscale in [-1, 1]: every output channel the luma of the input, the offset zero
    luma = np.array([0.2989, 0.5870, 0.1140], "float32")
    matrix = np.tile(np.append(luma, 0.0), (3, 1)) - np.eye(3, 4, dtype="float32")
    coefficients = np.broadcast_to(matrix.reshape(-1), (2, 8, 8, 12))
    expected = EDITS["grayscale"].target(x).numpy()
    np.testing.assert_allclose(layer([coefficients, x]), expected, atol=2e-3)
    # the offset column reaches any colour, and the output stays in [-1, 1]
    offset = np.zeros((3, 4), "float32")
    offset[:, 3] = 5.0
    shifted = layer([np.broadcast_to(offset.reshape(-1), (2, 8, 8, 12)), x]).numpy()
    assert shifted.max() == 1.0 and shifted.min() >= -1.0

    generator = unet_generator(ngf=4, num_downs=3, pixel_head=8, colour_transform=True, seed=0,
                               inference_mode="deterministic")
    assert generator.get_layer("pixel_out_conv").output.shape[-1] == 12  # 3 x (3 + 1)
    assert "output_tanh" not in {layer.name for layer in generator.layers}
    y = generator(x, training=False).numpy()
    assert np.abs(y - x).mean() < 0.1  # starts near the identity, unlike the tanh head
    path = tmp_path / "colour.keras"
    generator.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded(x, training=False), y)


def test_colour_extremes_make_the_half_turn_of_the_hue_exact():
    """With each pixel's largest and smallest channel in the basis, the HSV hue's half turn
    (max + min - x) is one constant matrix; the U-Net option widens the head to 3 x 6."""
    from pix2pix_tf.core.layers import ColourTransform
    from pix2pix_tf.tasks.instruct.edits import EDITS

    x = np.random.default_rng(2).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    layer = ColourTransform(3, extremes=True)
    np.testing.assert_allclose(layer([np.zeros((2, 8, 8, 18), "float32"), x]), x, atol=1e-6)
    matrix = np.zeros((3, 6), "float32")
    matrix[:, :3] = -2 * np.eye(3)  # (I + C) x = -x ...
    matrix[:, 4:] = 1.0  # ... + max + min
    coefficients = np.broadcast_to(matrix.reshape(-1), (2, 8, 8, 18))
    # in [0, 1] units the half turn is M + m - c; in [-1, 1] units the same formula holds
    expected = EDITS["hue_180"].target((x + 1) / 2).numpy() * 2 - 1
    np.testing.assert_allclose(layer([coefficients, x]), expected, atol=2e-3)
    generator = unet_generator(ngf=4, num_downs=3, pixel_head=8, colour_transform=True,
                               colour_extremes=True, seed=0)
    assert generator.get_layer("pixel_out_conv").output.shape[-1] == 18
    assert generator.get_layer("output_colour").get_config()["extremes"] is True
    with pytest.raises(ValueError, match="colour_extremes extends the colour transform"):
        unet_generator(colour_extremes=True)


def test_colour_transform_exports_to_onnx_and_tflite_as_the_same_function(tmp_path):
    from pix2pix_tf import Pix2Pix
    from pix2pix_tf.exporters.onnx import export_onnx, run_onnx
    from pix2pix_tf.exporters.tflite import export_tflite, run_tflite
    from pix2pix_tf.inference import inference_mode

    generator = unet_generator(ngf=4, num_downs=3, pixel_head=8, colour_transform=True, seed=1,
                               inference_mode="deterministic")
    model = Pix2Pix(generator, None, lambda_gan=0.0)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    with inference_mode(model, "deterministic"):  # what exports compute
        expected = generator(x, training=False).numpy()
    onnx_out, _ = run_onnx(export_onnx(model, tmp_path / "c.onnx", upsampling="subpixel"), x)
    tflite_out, _ = run_tflite(export_tflite(model, tmp_path / "c.tflite",
                                             image_size=(16, 16)), x)
    np.testing.assert_allclose(onnx_out, expected, atol=1e-4)
    np.testing.assert_allclose(tflite_out, expected, atol=1e-4)
