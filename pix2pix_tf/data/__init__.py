"""Data: where pairs come from, checking them, and turning them into ``(input, target)`` batches.

- :mod:`~pix2pix_tf.data.files`: finding image pairs on disk and checking every file up front;
- :mod:`~pix2pix_tf.data.sources`: the :class:`PairSource` interface (folders, arrays, TFDS);
- :mod:`~pix2pix_tf.data.pipeline`: the shared tail (shuffle, jitter, batch) and
  :func:`load_paired_dataset`;
- ``demo/``: the bundled map -> satellite tiles (made by ``python -m pix2pix_tf.cli.make_demo``);
- :mod:`~pix2pix_tf.data.tfds_pix2pix`: a TFDS builder for the public pix2pix datasets;
- :mod:`~pix2pix_tf.data.synthetic`: synthetic pairs (edges, grayscale, ...) from any photos.
"""

from pix2pix_tf.data.files import DataError, Scan, read_header, scan_pairs
from pix2pix_tf.data.pipeline import load_paired_dataset, pair_pipeline
from pix2pix_tf.data.sources import (
    DEMO_DIR,
    SOURCE_KINDS,
    ArraySource,
    FolderSource,
    PairSource,
    TFDSSource,
    available_splits,
    decode,
    open_source,
    register_source,
)

__all__ = ["DEMO_DIR", "SOURCE_KINDS", "ArraySource", "DataError", "FolderSource", "PairSource",
           "Scan", "TFDSSource", "available_splits", "decode", "load_paired_dataset",
           "open_source", "pair_pipeline", "read_header", "register_source", "scan_pairs"]
