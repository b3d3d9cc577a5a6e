"""The grid-artifact and sharpness measures (pix2pix_tf.metrics.TextureStats) on synthetic
images: a planted checkerboard scores high, natural photos near 1, blur lowers sharpness."""

import numpy as np
import pytest
from skimage import data, filters, transform

from pix2pix_tf.metrics import TextureStats, grid_period, texture_scores


@pytest.fixture(scope="module")
def photos():
    images = [transform.resize(getattr(data, name)(), (256, 256), anti_aliasing=True)
              for name in ("astronaut", "coffee", "chelsea", "rocket")]
    return np.stack(images).astype(np.float32) * 2 - 1


def checkerboard(period, amplitude, size=256):
    y, x = np.mgrid[:size, :size]
    return ((y // (period // 2) + x // (period // 2)) % 2 * 2.0 - 1)[None, :, :, None] * amplitude


def test_natural_photos_score_near_one(photos):
    assert texture_scores(photos, photos) == pytest.approx({"grid": 1.0, "sharp": 1.0})
    other = np.roll(photos, 1, axis=0)  # other real photos than the targets
    scores = texture_scores(photos, other)
    assert 0.8 < scores["grid"] < 1.2 and 0.5 < scores["sharp"] < 2.0


@pytest.mark.parametrize("period", [4, 8, 16, 32])
def test_a_planted_checkerboard_scores_high(photos, period):
    visible = texture_scores(photos, np.clip(photos + checkerboard(period, 0.1), -1, 1))
    faint = texture_scores(photos, np.clip(photos + checkerboard(period, 0.02), -1, 1))
    assert visible["grid"] > 2.0, visible
    assert 1.0 < faint["grid"] < visible["grid"]


def test_blur_lowers_sharpness_not_grid(photos):
    blurred = np.stack([filters.gaussian((p + 1) / 2, sigma=1.5, channel_axis=-1)
                        for p in photos]).astype(np.float32) * 2 - 1
    scores = texture_scores(photos, blurred)
    assert scores["sharp"] < 0.05 and 0.7 < scores["grid"] < 1.3


def test_stats_pool_over_batches_and_small_images(photos):
    stats = TextureStats()
    for i in range(len(photos)):
        stats.update(photos[i:i + 1], photos[i:i + 1])
    assert stats.result() == pytest.approx({"grid": 1.0, "sharp": 1.0})
    assert grid_period(256, 256) == 32 and grid_period(64, 64) == 8 and grid_period(16, 24) == 2
    small = photos[:, ::4, ::4]  # 64x64
    noisy = np.clip(small + checkerboard(8, 0.1, 64), -1, 1)
    assert texture_scores(small, noisy)["grid"] > 2.0


def test_loss_curves_plot_every_step_and_each_epochs_validation():
    from pix2pix_tf.plotting import curves_figure, smoothed

    steps = [{"step": str(i + 1), "epoch": str(i // 5), "g_l1": str(1.0 / (i + 1)),
              "d_loss": "0.7"} for i in range(10)]
    history = [{"epoch": str(e), "g_l1": "0.5", "d_loss": "0.7", "val_l1": str(0.4 - e / 10),
                "val_grid": "2.0", "val_sharp": "0.5", "lr": "1e-4"} for e in range(2)]
    fig = curves_figure(history, steps)
    panels = {ax.get_title(): ax for ax in fig.axes}
    l1 = {line.get_label(): line for line in panels["L1"].lines}
    assert list(l1["val_l1"].get_xdata()) == [5, 10]  # where each epoch ended
    raw = [line for line in panels["L1"].lines if line.get_alpha() == 0.25]
    assert len(raw) == 1 and list(raw[0].get_ydata()) == [1.0 / (i + 1) for i in range(10)]
    assert len(l1["g_l1 (per step)"].get_xdata()) == 10
    assert panels["L1"].get_xlabel() == "step"
    assert {line.get_label() for line in panels[next(t for t in panels if t.startswith("grid"))]
            .lines} == {"val_grid", "val_sharp"}
    # without steps.csv (a run from before it): per epoch
    assert curves_figure(history).axes[1].get_xlabel() == "epoch"
    trend = smoothed([0.0] * 50 + [1.0] * 50, 10)
    assert trend[0] == 0.0 and 0.0 < trend[55] < trend[99] < 1.0 and trend[99] > 0.99


def test_bilinear_up_init_starts_without_the_checkerboard(photos):
    """The paper's N(0, 0.02) up-convolution taps paint a grid before any training (the one
    short runs keep); up_init='bilinear' starts smooth, with the same layers."""
    from pix2pix_tf import unet_generator

    scores = {}
    for init in ("normal", "bilinear"):
        generator = unet_generator(ngf=8, up_init=init, seed=0, inference_mode="deterministic")
        scores[init] = texture_scores(photos, np.asarray(generator(photos)))["grid"]
        kernel = np.asarray(generator.get_layer("up3_conv").kernel)
        assert kernel.shape == (4, 4, 64, 128)  # the paper's layer either way
    assert scores["normal"] > 5.0 and scores["bilinear"] < 1.5, scores
    taps = np.array([1, 3, 3, 1]) / 4  # bilinear taps times one weight per channel pair
    expected = np.outer(taps, taps)[:, :, None, None] / taps[1] ** 2
    np.testing.assert_allclose(kernel / kernel[1:2, 1:2], np.broadcast_to(expected, kernel.shape),
                               rtol=1e-5)


@pytest.mark.parametrize("height, width", [(256, 256), (64, 48), (16, 24), (100, 37), (8, 8)])
def test_graph_masks_follow_the_documented_grid_period(height, width):
    """The graph-safe masks put exactly period x period grid points (less the mean) at the
    multiples of size / period that grid_period documents."""
    from pix2pix_tf.metrics import _grid_masks

    grid, high = (np.asarray(m) for m in _grid_masks(height, width))
    period = grid_period(height, width)
    assert grid.sum() == period * period - 1 and not grid[0, 0]
    rows = np.round(np.arange(period) * height / period).astype(int) % height
    cols = np.round(np.arange(period) * width / period).astype(int) % width
    assert grid[np.ix_(rows, cols)].sum() == period * period - 1
    assert not (grid & high).any() and high.any()
