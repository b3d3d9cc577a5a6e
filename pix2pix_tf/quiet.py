"""TensorFlow without its start-up chatter.

Importing TensorFlow 2.21 prints C++ log lines to the process's standard error ("All log
messages before absl::InitializeLog() is called...", the oneDNN notice, the CPU-feature notice),
twice, before anything of ours; ``TF_CPP_MIN_LOG_LEVEL`` no longer silences them, because they
are written before TensorFlow reads it. :func:`import_tensorflow` imports TensorFlow (and Keras)
with file descriptor 2 sent to a temporary file, then replays every captured line except those
known notices, so real errors still show. ``PIX2PIX_TF_VERBOSE=1`` shows everything.
"""

import os
import re
import sys
import tempfile

#: Start-up lines TensorFlow prints on every import that say nothing about this run.
NOTICES = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|To enable the following instructions|rebuild TensorFlow with the "
    r"appropriate compiler flags|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered|TF-TRT Warning|Could not find cuda drivers")


def verbose():
    return os.environ.get("PIX2PIX_TF_VERBOSE", "").lower() not in ("", "0", "false", "no")


def import_tensorflow():
    """Imports ``tensorflow`` and ``keras`` (once per process), keeping their start-up notices
    off the terminal unless ``PIX2PIX_TF_VERBOSE`` is set."""
    if "tensorflow" in sys.modules or verbose():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        return
    # 3: also TensorFlow's error-level runtime lines such as grappler's harmless "remapper
    # failed" on every training run (real failures still raise Python exceptions)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real standard error (some notebook kernels)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if line.strip() and not NOTICES.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
