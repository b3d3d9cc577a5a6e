import math

import keras
import numpy as np
import pytest

from pix2pix_tf import TABLE1_OBJECTIVES, LinearDecay
from pix2pix_tf.core.losses import discriminator_loss, gan_loss, generator_loss, l1_loss


def softplus(v):
    return math.log1p(math.exp(v))


def test_vanilla_gan_loss_is_binary_cross_entropy_on_logits():
    logits = np.array([[[[2.0], [-1.0]]], [[[0.0], [0.0]]]], "float32")  # 2 examples, 2 logits
    real = keras.ops.convert_to_numpy(gan_loss(logits, True, "vanilla"))
    fake = keras.ops.convert_to_numpy(gan_loss(logits, False, "vanilla"))
    # -log(sigmoid(z)) = softplus(-z); -log(1 - sigmoid(z)) = softplus(z)
    np.testing.assert_allclose(real, [(softplus(-2) + softplus(1)) / 2, math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(fake, [(softplus(2) + softplus(-1)) / 2, math.log(2)], rtol=1e-6)


def test_lsgan_loss_is_squared_error_to_the_label():
    logits = np.array([[[[2.0], [-1.0]]]], "float32")
    np.testing.assert_allclose(gan_loss(logits, True, "lsgan"), [(1 + 4) / 2])
    np.testing.assert_allclose(gan_loss(logits, False, "lsgan"), [(4 + 1) / 2])


def test_discriminator_loss_is_halved():
    real = np.full((1, 2, 2, 1), 3.0, "float32")
    fake = np.full((1, 2, 2, 1), -1.0, "float32")
    expected = 0.5 * (softplus(-3) + softplus(-1))
    np.testing.assert_allclose(discriminator_loss(real, fake), [expected], rtol=1e-6)


def test_generator_loss_is_non_saturating_gan_plus_lambda_l1():
    target = np.zeros((2, 2, 2, 1), "float32")
    output = np.stack([np.full((2, 2, 1), 0.5), np.full((2, 2, 1), -0.25)]).astype("float32")
    logits = np.zeros((2, 3, 3, 1), "float32")
    loss = {k: keras.ops.convert_to_numpy(v) for k, v in
            generator_loss(logits, target, output, lambda_l1=100.0).items()}
    np.testing.assert_allclose(loss["l1"], [0.5, 0.25])
    np.testing.assert_allclose(loss["gan"], [math.log(2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(loss["total"], [math.log(2) + 50, math.log(2) + 25], rtol=1e-6)
    no_gan = generator_loss(None, target, output, lambda_l1=100.0, lambda_gan=0.0)
    np.testing.assert_allclose(no_gan["total"], [50, 25])
    np.testing.assert_allclose(l1_loss(target, output), [0.5, 0.25])


def test_unknown_gan_mode_is_rejected():
    with pytest.raises(ValueError, match="vanilla, lsgan"):
        gan_loss(np.zeros((1, 1, 1, 1), "float32"), True, "wgan")


def test_table1_rows_build_the_models_they_name():
    """Each row of Table 1, through the trainer's own builder, gives the networks and weights it
    names: no discriminator for L1, an unconditional one for GAN, L1 off for the GAN rows."""
    from pix2pix_tf.config import TrainConfig, preset
    from pix2pix_tf.training import build_model

    built = {}
    for row in TABLE1_OBJECTIVES:
        config = preset("quick", objective=row, generator="unet", num_downs=2, ngf=4, ndf=4,
                        n_layers_d=1)
        built[row] = build_model(config, 3, 3, steps_per_epoch=1)
    assert set(built) == {"L1", "GAN", "cGAN", "L1+GAN", "L1+cGAN"}
    weight = config.lambda_l1  # the preset's (quick: the paper's 100, the default)
    assert TrainConfig().lambda_l1 == 100.0
    assert built["L1"].discriminator is None and built["L1"].lambda_l1 == weight
    assert not built["GAN"].conditional and built["GAN"].lambda_l1 == 0.0
    assert built["cGAN"].conditional and built["cGAN"].lambda_l1 == 0.0
    assert built["L1+GAN"].lambda_l1 == weight and not built["L1+GAN"].conditional
    assert built["L1+cGAN"].conditional and built["L1+cGAN"].lambda_gan == 1.0


def reference_lambda_rule(epoch, n_epochs, n_epochs_decay):
    """The reference code's LambdaLR rule (epoch_count = 1)."""
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


def test_linear_decay_matches_the_reference_per_epoch_rule():
    schedule = LinearDecay(2e-4, n_epochs=3, n_epochs_decay=4, steps_per_epoch=5)
    for step in range(0, 5 * 8):
        expected = 2e-4 * max(0.0, reference_lambda_rule(step // 5, 3, 4))
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6), step
    assert float(schedule(10_000)) == 0.0


def test_linear_decay_per_step_is_smooth_and_serialisable():
    schedule = LinearDecay(1.0, n_epochs=1, n_epochs_decay=1, steps_per_epoch=4, per_step=True)
    values = [float(schedule(s)) for s in range(12)]
    assert values[:1] == [1.0] and all(a >= b for a, b in zip(values, values[1:]))
    assert values[4] < 1.0 and values[4] > values[5]
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(clone, LinearDecay) and clone.get_config() == schedule.get_config()


def test_linear_decay_is_driven_by_the_optimizer_step_counter():
    schedule = LinearDecay(1.0, n_epochs=1, n_epochs_decay=1, steps_per_epoch=2)
    optimizer = keras.optimizers.SGD(schedule)
    var = keras.Variable(np.zeros(1, "float32"))
    lrs = []
    for _ in range(5):
        lrs.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        optimizer.apply([np.ones(1, "float32")], [var])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.0]
