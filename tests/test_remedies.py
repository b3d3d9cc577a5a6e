"""The named deviations against the GAN's lattice (issue 30): each does what its docstring says,
saves and loads, and is off in the paper's preset."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import dataset
from helpers import max_weight_diff, tiny_model

from pix2pix_tf import patchgan_discriminator, unet_generator
from pix2pix_tf.config import TrainConfig, preset
from pix2pix_tf.core import losses
from pix2pix_tf.core.layers import Blur2D, blur
from pix2pix_tf.model import Pix2Pix, cutout_mask
from pix2pix_tf.networks import as_generator
from pix2pix_tf.networks.patchgan import receptive_field
from pix2pix_tf.tasks.base import OBJECTIVE_OPTIONS

#: Every remedy at once (the last test trains with them); --d-antialias is BlurPool's
#: alternative, so it is checked on its own.
REMEDIES = {"d_blurpool": True, "pixel_head": 8, "pixel_kernel": 3, "d_spectral_norm": True,
            "d_cutout": 0.5, "r1_gamma": 1.0, "lambda_ffl": 1.0, "g_ema": 0.999, "lr_d": 4e-4,
            "d_shift": 32, "lambda_feat": 10.0, "l1_lowpass": True}
OPTIONS = {**REMEDIES, "d_antialias": True}


def test_every_remedy_is_off_in_the_papers_preset_and_a_flag():
    paper = preset("paper")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name in OPTIONS:
        assert getattr(paper, name) == defaults[name], name
    assert set(OBJECTIVE_OPTIONS) <= set(defaults)
    # the generator's own remedies (builder options) are the builder's defaults in the paper's
    assert paper.g_options == {} and preset("quick").g_options == {"up_phases": "balanced",
                                                                    "pixel_noise": 4}
    from pix2pix_tf.cli.train import parser

    text = parser().format_help()
    for name in OPTIONS:
        assert "--" + name.replace("_", "-") in text, name
    # A preset's switched-on remedy can be switched off again (the quick preset's low-pass L1).
    assert preset("quick").l1_lowpass and preset("quick").g_ema > 0
    assert parser().parse_args(["--no-l1-lowpass"]).l1_lowpass is False
    assert parser().parse_args(["--no-d-antialias"]).d_antialias is False
    assert parser().parse_args(["--d-blurpool"]).d_blurpool is True
    assert parser().parse_args([]).d_antialias is None  # unset: the preset's value stands


def test_blur_removes_the_nyquist_checkerboard_and_keeps_flat_images():
    checker = np.indices((16, 16)).sum(0) % 2 * 2.0 - 1.0
    images = np.stack([checker, np.full((16, 16), 0.3)], 0)[..., None].astype("float32")
    blurred = Blur2D()(images).numpy()
    assert blurred.shape == images.shape
    assert np.abs(blurred[0, 1:-1, 1:-1]).max() < 1e-6  # [1, 2, 1] has a zero at Nyquist
    np.testing.assert_allclose(blurred[1], 0.3, atol=1e-6)


def test_antialiased_patchgan_blurs_before_every_strided_convolution():
    plain = patchgan_discriminator(3, 3, ndf=8, n_layers=3, seed=0)
    smooth = patchgan_discriminator(3, 3, ndf=8, n_layers=3, antialias=True, seed=0)
    blurs = [layer.name for layer in smooth.layers if isinstance(layer, Blur2D)]
    strided = [layer.name for layer in plain.layers
               if isinstance(layer, keras.layers.Conv2D) and layer.strides[0] == 2]
    assert blurs == [f"{name}_blur" for name in strided] and len(blurs) == 3
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    assert plain([x, x]).shape == smooth([x, x]).shape
    assert plain.count_params() == smooth.count_params()  # the blur has no weights
    assert receptive_field(smooth) > receptive_field(plain) == 70


def test_blurpool_patchgan_still_sees_the_finest_detail_the_blur_first_one_cannot():
    """A Nyquist checkerboard added to the judged image: the blur-first D (--d-antialias)
    gives the same verdict, blind to it; BlurPool's D (its first convolution at stride 1,
    the blur after the activation) changes its verdict. Same output grid, same weights."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (1, 64, 64, 3)).astype("float32")
    checker = (np.indices((64, 64)).sum(0) % 2 * 0.4 - 0.2)[None, :, :, None].astype("float32")
    verdicts = {}
    for kind in ("antialias", "blurpool"):
        d = patchgan_discriminator(3, 3, ndf=8, n_layers=3, norm="none", seed=0,
                                   **{kind: True})
        base = d([x, x]).numpy()
        # The verdict's change for the checkerboard, relative to its change for other content.
        verdicts[kind] = (np.abs(d([x, x + checker]).numpy() - base).max()
                          / np.abs(d([x, -x]).numpy() - base).max())
        assert d([x, x]).shape == (1, 6, 6, 1)
        assert d.count_params() == patchgan_discriminator(3, 3, ndf=8, norm="none").count_params()
        pools = [layer for layer in d.layers if isinstance(layer, Blur2D)]
        assert len(pools) == 3 and all(p.strides == (2 if kind == "blurpool" else 1)
                                       for p in pools)
        if kind == "blurpool":  # no strided convolution left; the blurs subsample
            assert all(layer.strides[0] == 1 for layer in d.layers
                       if isinstance(layer, keras.layers.Conv2D))
    assert verdicts["antialias"] < 1e-5 and verdicts["blurpool"] > 0.3
    assert Blur2D.from_config(Blur2D(strides=2).get_config()).strides == 2
    with pytest.raises(ValueError, match="one or the other"):
        patchgan_discriminator(3, 3, antialias=True, blurpool=True)
    with pytest.raises(ValueError, match="strides must be 1 or 2"):
        Blur2D(strides=3)


def test_a_3x3_pixel_head_reaches_the_generator_from_the_config():
    config = preset("quick", pixel_head=8, pixel_kernel=3)
    g = unet_generator(3, 3, **{**config.generator_options(), "num_downs": 4})
    assert [g.get_layer(f"pixel{k}_conv").kernel_size for k in (1, 2)] == [(3, 3)] * 2
    x = np.random.default_rng(0).uniform(-1, 1, (1, 48, 32, 3)).astype("float32")
    assert g(x).shape == x.shape
    with pytest.raises(ValueError, match="pixel_kernel must be 1 or 3"):
        unet_generator(3, 3, ngf=4, num_downs=3, pixel_head=4, pixel_kernel=2)
    with pytest.raises(ValueError, match="pixel_kernel applies to the pixel head"):
        unet_generator(3, 3, ngf=4, num_downs=3, pixel_kernel=3)


def test_spectral_norm_makes_the_verdict_blind_to_the_kernels_scale():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")

    def verdicts(spectral_norm):
        d = patchgan_discriminator(3, 3, ndf=8, n_layers=2, norm="none",
                                   spectral_norm=spectral_norm, seed=0)
        for _ in range(100):  # let the power iteration (from a random start) converge
            before = d([x, x], training=True).numpy()
        for layer in d.layers:
            conv = getattr(layer, "layer", layer)
            if isinstance(conv, keras.layers.Conv2D):
                conv.kernel.assign(conv.kernel * 10.0)
        return before, d([x, x], training=True).numpy()

    before, after = verdicts(True)
    np.testing.assert_allclose(before, after, rtol=3e-3, atol=1e-4)  # not 10x
    before, after = verdicts(False)
    assert np.abs(before - after).max() > 1e-2


def test_cutout_blanks_one_square_of_the_asked_side_the_same_in_both_images():
    mask = cutout_mask(tf.constant([3, 32, 40, 1]), 0.5, tf.constant([1, 2])).numpy()
    assert mask.shape == (3, 32, 40, 1)
    for m in mask[..., 0]:
        rows, cols = np.nonzero(m == 0)
        assert rows.max() - rows.min() + 1 == 16 and cols.max() - cols.min() + 1 == 20
        assert (m == 0).sum() == 16 * 20
    again = cutout_mask(tf.constant([3, 32, 40, 1]), 0.5, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(mask, again)
    model = tiny_model(d_cutout=0.25)
    x = np.ones((2, 16, 16, 3), "float32")
    condition, image = model._augmented([x, 2 * x])
    np.testing.assert_array_equal(condition.numpy() == 0, image.numpy() == 0)
    assert (condition.numpy() == 0).sum() == 2 * 16 * 3


def test_r1_is_the_gradient_penalty_at_real_pairs_applied_lazily(pairs):
    x, y = (tf.constant(a[:2]) for a in pairs)
    model = tiny_model(r1_gamma=2.0, r1_every=4)
    model.compile()
    with tf.GradientTape() as tape:
        tape.watch(y)
        logits = model.discriminator([x, y], training=True)
        total = tf.reduce_sum(logits)
    expected = float(tf.reduce_sum(tape.gradient(total, y) ** 2)) * 0.5 * 2.0 * 4 / 2
    assert float(model._r1(x, y, 2.0)) == pytest.approx(expected, rel=1e-4)  # step 0: due
    model.d_optimizer.iterations.assign(1)
    assert float(model._r1(x, y, 2.0)) == 0.0  # lazy: not due
    # it changes D's update, and training with it is finite
    plain = tiny_model()
    plain.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    penalised = tiny_model(r1_gamma=10.0, r1_every=1)
    penalised.compile(d_optimizer=keras.optimizers.SGD(0.1),
                      g_optimizer=keras.optimizers.SGD(0.1))
    data = dataset(*pairs)
    plain.fit(data, epochs=1, verbose=0)
    history = penalised.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"]).all()
    assert max_weight_diff(plain.discriminator, penalised.discriminator) > 1e-4


def _focal_frequency_reference(target, output, alpha=1.0):
    f = np.fft.fft2(np.moveaxis(output, -1, 1), norm="ortho")
    g = np.fft.fft2(np.moveaxis(target, -1, 1), norm="ortho")
    distance = np.abs(f - g) ** 2
    weight = np.sqrt(distance) ** alpha
    weight = weight / weight.max(axis=(2, 3), keepdims=True)
    return (weight * distance).mean(axis=(1, 2, 3))


def test_focal_frequency_loss_matches_the_papers_formula():
    rng = np.random.default_rng(0)
    target, output = rng.uniform(-1, 1, (2, 2, 16, 12, 3)).astype("float32")
    got = losses.focal_frequency_loss(target, output).numpy()
    np.testing.assert_allclose(got, _focal_frequency_reference(target, output), rtol=1e-4)
    assert float(tf.reduce_max(losses.focal_frequency_loss(target, target))) == 0.0
    output = tf.Variable(output)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.focal_frequency_loss(target, output))
    assert np.isfinite(tape.gradient(loss, output).numpy()).all()


def test_focal_frequency_term_joins_the_generator_loss(pairs):
    x, y = (tf.constant(a[:2]) for a in pairs)
    plain, focal = tiny_model(), tiny_model(lambda_ffl=3.0)
    fake = plain.generator(x, training=False)
    logits = plain.discriminate(x, fake)[0]
    a = plain._generator_loss(logits, y, fake, None)["total"]
    b = focal._generator_loss(logits, y, fake, None)["total"]
    np.testing.assert_allclose(b - a, 3.0 * losses.focal_frequency_loss(y, fake), rtol=1e-5)


def test_low_pass_l1_compares_blurred_half_resolution_images(pairs):
    """--l1-lowpass: the L1 term (logged g_l1) is |blur(y) - blur(G(x))| at half resolution,
    so a Nyquist checkerboard (detail finer than the blur passes) costs it nothing, while a
    full-resolution L1 pays for every pixel of it."""
    x, y = (tf.constant(a[:2]) for a in pairs)
    plain, low = tiny_model(), tiny_model(l1_lowpass=True)
    fake = plain.generator(x, training=False)
    logits = plain.discriminate(x, fake)[0]
    expected = np.abs(blur(y, 2).numpy() - blur(fake, 2).numpy()).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(low._generator_loss(logits, y, fake, None)["l1"], expected,
                               rtol=1e-5)
    size = y.shape[1]
    checker = tf.constant((np.indices((size, size)).sum(0) % 2 * 0.2 - 0.1)[None, :, :, None],
                          tf.float32)
    cost = {name: float(tf.reduce_mean(model._generator_loss(logits, y, y + checker, None)["l1"]))
            for name, model in (("plain", plain), ("low", low))}
    assert cost["plain"] == pytest.approx(0.1, rel=1e-4) and cost["low"] < 1e-6
    assert Pix2Pix.from_config(low.get_config()).l1_lowpass  # saved with the model


def test_ema_averages_g_and_is_what_inference_and_export_use(pairs, tmp_path):
    model = tiny_model(g_ema=0.9)
    model.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1))
    start = [v.numpy() for v in model.generator.trainable_variables]
    np.testing.assert_array_equal(start[0], model.generator_ema.trainable_variables[0].numpy())
    model.fit(dataset(*pairs, batch_size=4), epochs=1, verbose=0)  # one step: t = 1
    decay = min(0.9, 2 / 11)
    for s, w, a in zip(start, model.generator.trainable_variables,
                       model.generator_ema.trainable_variables):
        np.testing.assert_allclose(a.numpy(), decay * s + (1 - decay) * w.numpy(), atol=1e-6)
    x = pairs[0]
    model.inference_mode = "deterministic"
    assert as_generator(model) is model.generator_ema and model.use_ema
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               model.generator_ema(x, training=False), atol=1e-6)
    raw = model.generator(x, training=False).numpy()
    assert np.abs(model.predict(x, verbose=0) - raw).max() > 1e-4
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.use_ema and loaded.g_ema == 0.9
    assert max_weight_diff(loaded.generator_ema, model.generator_ema) == 0.0
    loaded.use_ema = False
    np.testing.assert_allclose(loaded.predict(x, verbose=0), raw, atol=1e-6)
    with pytest.raises(ValueError, match="g_ema"):
        tiny_model().use_ema = True


def test_ema_trains_under_a_mirrored_strategy(pairs):
    from pix2pix_tf.distribute import strategy

    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    with strategy("mirrored", devices).scope():
        model = tiny_model(g_ema=0.5, norm="instance", dropout=False)
        model.compile(g_optimizer=keras.optimizers.SGD(0.1))
    model.fit(dataset(*pairs, batch_size=4), epochs=1, verbose=0)
    assert max_weight_diff(model.generator, model.generator_ema) > 0


def test_discriminator_accuracy_and_its_per_step_log(pairs):
    logits = tf.constant([[[[2.0], [-1.0]], [[0.5], [3.0]]]])  # (1, 2, 2, 1): 3 of 4 > 0
    assert float(losses.discriminator_accuracy(logits, True)[0]) == 0.75
    assert float(losses.discriminator_accuracy(logits, False)[0]) == 0.25
    assert float(losses.discriminator_accuracy(logits, True, "lsgan")[0]) == 0.5
    model = tiny_model()
    model.compile()
    history = model.fit(dataset(*pairs), epochs=1, verbose=0).history
    for key in ("d_real_acc", "d_fake_acc"):
        assert 0.0 <= history[key][0] <= 1.0
    assert "d_real_acc" not in {m.name for m in tiny_model(lambda_gan=0.0).train_metrics}


def test_feature_matching_works_with_the_plain_patchgan(pairs):
    x, y = (tf.constant(a[:2]) for a in pairs)
    model = tiny_model(lambda_feat=10.0)
    logits, features = model.discriminate(x, y, training=False)
    assert len(logits) == 1 and len(features) == 1 and len(features[0]) == 2  # n_layers=1
    model.compile()
    history = model.fit(dataset(*pairs), epochs=1, verbose=0).history
    assert history["g_feat"][0] > 0
    plain = [w.name for w in tiny_model().weights]
    assert [w.name for w in model.weights] == plain  # the view adds nothing to save
    with pytest.raises(ValueError, match="lambda_feat"):
        Pix2Pix(unet_generator(3, 3, ngf=8, num_downs=3), lambda_gan=0.0, lambda_feat=1.0)


def test_ttur_gives_the_discriminator_its_own_rate():
    from pix2pix_tf.training import build_model

    config = preset("quick", lr=1e-4, lr_d=4e-4, ngf=4, ndf=4)
    model = build_model(config, 3, 3, steps_per_epoch=10)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(4e-4)


def test_a_config_with_every_remedy_builds_trains_and_reloads(tmp_path, pairs):
    from pix2pix_tf.training import build_model

    config = TrainConfig.create(generator="unet", num_downs=3, ngf=4, ndf=4, n_layers_d=1,
                                crop_size=16, load_size=16, **REMEDIES)
    model = build_model(config, 3, 3, steps_per_epoch=2)
    assert model.g_ema == 0.999 and model.r1_gamma == 1.0 and model.d_cutout == 0.5
    assert any(isinstance(layer, Blur2D) for layer in model.discriminator.layers)
    history = model.fit(dataset(*pairs), epochs=1, verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    model.save(tmp_path / "all.keras")
    loaded = keras.models.load_model(tmp_path / "all.keras")
    assert max_weight_diff(loaded, model) == 0.0
    loaded.fit(dataset(*pairs), epochs=1, verbose=0)  # optimizer state and all restored


def test_the_trainer_keeps_whichever_generator_validates_better(pairs):
    from pix2pix_tf.training import choose_average

    model = tiny_model(g_ema=0.9, inference_mode="deterministic")  # no test-time dropout
    model.compile()
    data = dataset(*pairs)
    model.fit(data, epochs=2, verbose=0)
    scores = choose_average(model, data)
    assert model.use_ema == (scores[True] <= scores[False])
    model.use_ema = not model.use_ema
    l1 = model.evaluate(data, verbose=0, return_dict=True)["l1"]
    assert l1 == pytest.approx(scores[model.use_ema], rel=1e-5)
    assert choose_average(tiny_model(), data) is None
