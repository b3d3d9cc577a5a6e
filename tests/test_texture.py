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
