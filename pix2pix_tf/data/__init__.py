"""Data: find and check image pairs, and turn them into ``(input, target)`` batches."""

from pix2pix_tf.data.files import DataError, Scan, read_header, scan_pairs
from pix2pix_tf.data.pipeline import PREPROCESS_MODES, decode, load_paired_dataset

__all__ = ["DataError", "PREPROCESS_MODES", "Scan", "decode", "load_paired_dataset",
           "read_header", "scan_pairs"]
