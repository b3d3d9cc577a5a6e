"""Faults: failed writes, two trainers on one run directory."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys

import keras
import pytest
from test_cli import TINY, assert_same_run, history, make_pairs

from pix2pix_tf.callbacks import StopOnCtrlC, checkpoints
from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.rundir import LOCK_NAME, RunLock, RunLockedError, RunWriteError, write_atomically


def args(data, run, epochs=1):
    return ["--data", str(data), "--run-dir", str(run), "--epochs", str(epochs),
            "--epochs-decay", str(epochs), *TINY]


def leftovers(run):
    return sorted(p.name for p in run.rglob("*") if ".tmp" in p.name)


@pytest.mark.parametrize("victim", ["epoch_0002.keras", "history.csv", "epoch_0002.png"])
def test_a_failed_write_stops_cleanly_and_the_run_resumes(tmp_path, monkeypatch, capsys, victim):
    data, run = make_pairs(tmp_path / "data"), tmp_path / "run"
    real_write = write_atomically
    calls = {"history": 0}

    def full_disk(tmp):
        tmp.write_bytes(b"half a file")  # what a full disk leaves behind
        raise OSError(errno.ENOSPC, "No space left on device")

    def failing_write(path, write):
        if path.name == "history.csv":
            calls["history"] += 1
        if path.name == victim and (victim != "history.csv" or calls["history"] == 2):
            return real_write(path, full_disk)
        return real_write(path, write)

    monkeypatch.setattr("pix2pix_tf.rundir.write_atomically", failing_write)
    monkeypatch.setattr("pix2pix_tf.callbacks.write_atomically", failing_write)
    monkeypatch.setattr("pix2pix_tf.core.plotting.write_atomically", failing_write)
    assert train_cli.main(args(data, run)) == 1
    err = capsys.readouterr().err
    assert f"cannot write {run}" in err and victim in err and "No space left on device" in err
    assert "(the disk is full)" in err and "run the same command again to resume" in err
    assert leftovers(run) == []
    (epochs_done, newest), = checkpoints(run / "checkpoints")
    assert epochs_done == 1 and keras.models.load_model(newest).g_optimizer.iterations > 0
    assert not (run / LOCK_NAME).exists()

    monkeypatch.setattr("pix2pix_tf.rundir.write_atomically", real_write)
    monkeypatch.setattr("pix2pix_tf.callbacks.write_atomically", real_write)
    monkeypatch.setattr("pix2pix_tf.core.plotting.write_atomically", real_write)
    assert train_cli.main(args(data, run)) == 0
    assert "from epoch_0001.keras" in capsys.readouterr().out
    assert [r["epoch"] for r in history(run)] == ["0", "1"]
    assert (run / "model.keras").is_file() and leftovers(run) == []


def test_write_atomically_keeps_the_old_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("new, half")
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(RunWriteError, match=f"cannot write {path}: Permission denied"):
        write_atomically(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.json"]


@pytest.fixture
def other_process():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def hold(run, pid, host=None):
    run.mkdir(parents=True, exist_ok=True)
    (run / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                             "started": "2026-01-01T00:00:00"}))


def test_a_second_trainer_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys, other_process):
    data, run = make_pairs(tmp_path / "data"), tmp_path / "run"
    hold(run, other_process.pid)
    assert train_cli.main(args(data, run)) == 2
    err = capsys.readouterr().err
    assert f"in use by another trainer: process {other_process.pid} on {socket.gethostname()}" in err
    assert not (run / "config.json").exists()  # nothing was touched
    # --fresh must not wipe a directory another trainer is using
    assert train_cli.main(args(data, run) + ["--fresh"]) == 2 and (run / LOCK_NAME).exists()

    other_process.kill()
    other_process.wait()
    with pytest.warns(UserWarning, match=f"stale lock left by process {other_process.pid}"):
        assert train_cli.main(args(data, run)) == 0
    assert "took over the stale run lock" in capsys.readouterr().out
    assert not (run / LOCK_NAME).exists()  # released at the end


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    hold(tmp_path, 1, host="some-other-machine")
    with pytest.raises(RunLockedError, match="If nothing runs on some-other-machine any more, "
                                              "delete"):
        RunLock(tmp_path).acquire()
    (tmp_path / "free").mkdir()
    with RunLock(tmp_path / "free") as lock:
        record = json.loads(lock.path.read_text())
        assert record["host"] == socket.gethostname() and record["pid"] > 0
        with pytest.raises(RunLockedError, match=r"\(this process\)"):
            RunLock(tmp_path / "free").acquire()
    assert not (tmp_path / "free" / LOCK_NAME).exists()


def corrupt_png(path):
    """Overwrites part of a PNG's pixel data: the header (and the IEND marker) still read fine."""
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 40
    data[start:start + 20] = bytes(20)
    path.write_bytes(bytes(data))


def test_corrupt_pixel_data_is_found_before_training(tmp_path):
    from pix2pix_tf.data import DataError, open_source

    data = make_pairs(tmp_path / "data", n=6)
    bad = data / "train" / "3.png"
    corrupt_png(bad)
    with pytest.raises(DataError, match=rf"{bad}: corrupt image data \(Invalid PNG data"):
        open_source(str(data), "train")
    with pytest.warns(UserWarning, match="Skipping 1 bad file"):
        assert len(open_source(str(data), "train", on_error="skip")) == 5


def test_data_corrupted_during_training_is_named(tmp_path):
    from pix2pix_tf.config import TrainConfig
    from pix2pix_tf.data import DataError
    from pix2pix_tf.data.sources import FolderSource
    from pix2pix_tf.training import train

    data = make_pairs(tmp_path / "data", n=4)
    source = FolderSource(data, "train", cache=False)  # read from disk at every step
    bad = data / "train" / "2.png"
    corrupt_png(bad)  # after the start-up check
    config = TrainConfig(data=str(data), run_dir=str(tmp_path / "run"), crop_size=32,
                         load_size=36, generator="unet", num_downs=5, ngf=4, ndf=4, n_layers_d=1,
                         epochs=1, epochs_decay=0, samples=0)
    with pytest.raises(DataError, match=rf"changed after the start-up check:\n  {bad}: corrupt"):
        train(config, train_data=source, verbose=0)


@pytest.mark.slow
def test_kill_9_mid_epoch_resumes_at_the_exact_step(tmp_path):
    """A real SIGKILL inside an epoch: the resumed run's history and weights equal an
    uninterrupted run's."""
    import os
    import signal
    import time

    from pix2pix_tf.callbacks import PARTIAL_STATE

    data = make_pairs(tmp_path / "data", n=48, size=32)  # 48 steps per epoch
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def command(run):
        return [sys.executable, "-m", "pix2pix_tf.train", *args(data, run, epochs=2),
                "--checkpoint-every", "5"]

    straight = subprocess.run(command(tmp_path / "straight"), env=env, capture_output=True,
                              text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run = tmp_path / "killed"
    process = subprocess.Popen(command(run), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state_file = run / "checkpoints" / PARTIAL_STATE
    deadline = time.time() + 300
    state = None
    while time.time() < deadline and process.poll() is None:
        try:  # wait for a mid-epoch checkpoint in the second epoch
            state = json.loads(state_file.read_text())
            if state["epoch"] == 1:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state is not None and state["epoch"] == 1 and 0 < state["step"] < 48
    state = json.loads(state_file.read_text())  # the newest one written before the kill

    resumed = subprocess.run(command(run), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"epoch 1 of 4, step {state['step']} of 48" in resumed.stdout
    assert_same_run(run, tmp_path / "straight")
    assert not state_file.exists()  # the epoch checkpoints superseded it


def test_ctrl_c_is_noted_until_the_step_ends_and_twice_stops_at_once():
    before = signal.getsignal(signal.SIGINT)
    stop = StopOnCtrlC()
    with stop:
        os.kill(os.getpid(), signal.SIGINT)  # noted, not raised inside whatever runs now
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.on_train_batch_end(0)  # raised at the step's end, from Python
        stop.on_train_batch_end(1)  # once only
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C: at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_worker_stops_the_others_naming_it_and_the_same_command_resumes(tmp_path,
                                                                                 victim):
    """Two workers on 127.0.0.1 (TF_CONFIG); one is killed with SIGKILL inside the run (the
    chief, worker 0, or worker 1). The other stops within a bounded time with one line naming
    the lost worker, instead of waiting in an all-reduce forever; the same command on both
    workers then resumes from the newest checkpoint and finishes."""
    import time

    from test_speed_options import free_ports

    data = make_pairs(tmp_path / "data", n=16)
    hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
    command = [sys.executable, "-m", "pix2pix_tf.train", *args(data, tmp_path / "run", 6),
               "--epochs-decay", "0", "--batch-size", "4", "--norm", "instance",
               "--no-dropout", "--strategy", "multiworker", "--checkpoint-every", "3"]

    def start():
        return [subprocess.Popen(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                               "TF_CONFIG": json.dumps(
                                                   {"cluster": {"worker": hosts},
                                                    "task": {"type": "worker", "index": i}})},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(2)]

    workers = start()
    steps = tmp_path / "run" / "steps.csv"
    deadline = time.time() + 300
    while time.time() < deadline and all(w.poll() is None for w in workers):
        if steps.exists() and len(steps.read_text().splitlines()) > 8:  # 2 checkpoints done
            break
        time.sleep(0.1)
    workers[victim].send_signal(signal.SIGKILL)
    killed = time.time()
    survivor = workers[1 - victim]
    _, err = survivor.communicate(timeout=120)
    waited = time.time() - killed
    workers[victim].wait()
    assert survivor.returncode == 1 and waited < 60, err[-2000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: worker {victim} ({hosts[victim]}) of the multi-worker run "
                           "stopped responding"), err[-2000:]
    assert "Run the same command on every worker to resume" in line

    workers = start()  # the same command on both: resumes, then finishes
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][1][-2000:]
    assert "Resuming" in outputs[0][0]
    assert [int(r["epoch"]) for r in history(tmp_path / "run")] == list(range(6))
