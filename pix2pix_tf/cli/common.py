"""Shared command-line plumbing: exit codes and friendly error reporting."""

import argparse
import os
import sys

# TF logs a harmless grappler "remapper failed" line at error level on every training run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def fail(message, code=EXIT_ERROR):
    print(f"error: {message}", file=sys.stderr)
    return code


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows defaults."""
