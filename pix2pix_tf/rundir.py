"""What keeps a run directory whole: one trainer at a time, and writes that fail cleanly.

- :class:`RunLock`: ``RUN_DIR/.lock`` holds the trainer's PID, host and start time. A second
  trainer on the same directory (a notebook cell run twice, a resubmitted job) is refused with a
  message naming the holder. A lock left by a process that no longer exists on this host is stale:
  it is taken over with a warning.
- :func:`save_atomically` / :func:`write_atomically`: a file is written under a temporary name and
  renamed into place, so a crash leaves the previous file intact. A failed write (no space, no
  permission, read-only folder) removes the temporary file and raises :class:`RunWriteError`,
  which names the path and the cause; the newest checkpoint stays the last good one.
"""

import datetime
import errno
import json
import os
import socket
import warnings
from pathlib import Path

from pix2pix_tf.errors import DataError

LOCK_NAME = ".lock"


class RunWriteError(OSError):
    """Writing into the run directory failed; the message names the path and the cause."""


class RunLockedError(DataError):
    """Another trainer holds the run directory."""


def _cause(error):
    return error.strerror or str(error) or type(error).__name__


def write_atomically(path, write):
    """Calls ``write(tmp_path)`` then renames ``tmp_path`` to ``path``.

    Raises :class:`RunWriteError` (with the temporary file removed) if either step fails.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        hint = " (the disk is full)" if error.errno == errno.ENOSPC else ""
        raise RunWriteError(error.errno, f"cannot write {path}: {_cause(error)}{hint}") from None


def save_atomically(model, path):
    """Saves a Keras model to ``path`` atomically (see :func:`write_atomically`)."""
    write_atomically(path, model.save)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir`` for one trainer; see the module docstring."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def holder(self):
        """The lock's record (``pid``, ``host``, ``started``), or None if there is none."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"pid": None, "host": None, "started": None}  # unreadable: treat as foreign

    def acquire(self):
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().isoformat(timespec="seconds")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._refuse_or_clear()
                continue
            except OSError as error:
                raise RunWriteError(error.errno, f"cannot write {self.path}: "
                                                 f"{_cause(error)}") from None
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self.held = True
            return self
        raise RunLockedError(f"{self.path}: could not take the run lock (another trainer keeps "
                             "taking it).")

    def _refuse_or_clear(self):
        holder = self.holder()
        if holder is None:
            return
        pid, host = holder.get("pid"), holder.get("host")
        here = host == socket.gethostname()
        if here and isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
            warnings.warn(f"{self.path}: taking over a stale lock left by process {pid} on "
                          f"{host} (started {holder.get('started')}), which no longer runs.",
                          stacklevel=3)
            print(f"note: took over the stale run lock of process {pid} (no longer running).")
            self.path.unlink(missing_ok=True)
            return
        who = (f"process {pid} on {host}" + (" (this process)" if pid == os.getpid() and here
                                             else "")
               + f", started {holder.get('started')}")
        raise RunLockedError(
            f"{self.path.parent} is in use by another trainer: {who}. Wait for it to finish, or "
            "train into another --run-dir."
            + ("" if here else f" If nothing runs on {host} any more, delete {self.path}."))

    def release(self):
        if self.held:
            holder = self.holder()
            if holder and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
