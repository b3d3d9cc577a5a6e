"""Datasets: the bundled demo data, the TFDS builder, and synthetic-pair helpers."""

from pathlib import Path

#: Root of the bundled demo dataset (side-by-side map|satellite tiles in train/ and test/).
DEMO_DIR = Path(__file__).resolve().parent / "demo"
