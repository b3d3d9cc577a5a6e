"""Training on several devices: one obvious way to get a ``tf.distribute`` strategy.

``strategy(kind)`` for kind in :data:`STRATEGIES`:

- ``"none"``: the default strategy (one device);
- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs (or the given
  devices), with its default all-reduce;
- ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy``; every worker runs the same
  command with ``TF_CONFIG`` naming the cluster and its own index (see docs/multi_device.md);
- ``"tpu"``: ``tf.distribute.TPUStrategy`` on the TPU the environment provides (Colab).

A strategy of each kind is made once per process and device set, then reused, and every
MirroredStrategy made here gets collective keys of its own. This works around a TensorFlow bug:
each new MirroredStrategy numbers its collective operations from the same keys, so the second one
made in a process (a notebook cell run twice, a second model in a script, another device set)
fails with "Shape mismatch in the collective instance 100"
(benchmarks/repro_collective_keys.py reproduces it without this package). TensorFlow offers no
public way to choose the keys: the private class attribute ``_collective_key_base``, which its
own tests set, is set here for the duration of the constructor.
"""

import itertools

import tensorflow as tf

#: ``TrainConfig.strategy``: the devices a run trains on (see :func:`strategy`).
STRATEGIES = ("none", "mirrored", "multiworker", "tpu")

_made = {}
_key_bases = itertools.count(1)
#: Collective group keys reserved per strategy (a strategy uses one group per device set).
KEY_BLOCK = 10_000


def _mirrored(devices):
    """A MirroredStrategy whose collective keys no other strategy in this process uses."""
    cls = tf.distribute.MirroredStrategy
    if not hasattr(cls, "_collective_key_base"):  # a TensorFlow that no longer has the bug's cause
        return cls(devices)
    cls._collective_key_base = next(_key_bases) * KEY_BLOCK
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = 0


def strategy(kind="none", devices=None):
    """The ``tf.distribute`` strategy of ``kind`` (made once per process and device set)."""
    if kind not in STRATEGIES:
        raise ValueError(f"Unknown strategy {kind!r}; choose one of {', '.join(STRATEGIES)}.")
    key = (kind, tuple(devices) if devices else None)
    if key not in _made:
        if kind == "none":
            made = tf.distribute.get_strategy()
        elif kind == "mirrored":
            made = _mirrored(devices)
        elif kind == "multiworker":
            try:
                made = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as error:
                raise RuntimeError(
                    f"strategy 'multiworker' ({error}): it must be made before TensorFlow "
                    "runs anything in this process. Use the train command, or call "
                    "pix2pix_tf.distribute.strategy('multiworker') first thing.") from error
        else:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            made = tf.distribute.TPUStrategy(resolver)
        _made[key] = made
    return _made[key]


# ---------------------------------------------------------------------- multi-worker training
def worker_index():
    """``(index, count)`` of this worker in ``TF_CONFIG``'s cluster (``(0, 1)`` without one)."""
    import json
    import os

    spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
    workers = spec.get("cluster", {}).get("worker", [])
    return int(spec.get("task", {}).get("index", 0)), max(len(workers), 1)


def gather_across_workers(strategy, value):
    """Every replica's number ``value`` (one replica per worker on CPUs), in replica order, on
    every worker: one all-reduce of a vector holding each replica's value in its own slot
    (``all_gather`` fails inside a ``tf.function`` under MultiWorkerMirroredStrategy)."""

    @tf.function
    def gather():
        def slot():
            context = tf.distribute.get_replica_context()
            mine = tf.one_hot(context.replica_id_in_sync_group, context.num_replicas_in_sync,
                              dtype=tf.float64) * tf.constant(float(value), tf.float64)
            return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

        return strategy.run(slot)

    local = strategy.experimental_local_results(gather())[0]
    return [int(v) for v in local.numpy()]


class WorkerLost(RuntimeError):
    """A worker of a multi-worker run stopped (killed, crashed, its machine lost): the others
    stop too, with this error naming it, instead of waiting forever in an all-reduce."""


#: The errors TensorFlow's collectives end with when a peer is gone: its coordination service
#: stops hearing the lost worker's heartbeats (about 10 s), or the connection is refused.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
               tf.errors.DeadlineExceededError)


def lost_worker(error):
    """``(index, host)`` of the worker that ``error`` (one of :data:`PEER_ERRORS`) says is gone,
    from the task it names or the address it could not reach; ``(None, None)`` if it names none
    but this one."""
    import json
    import os
    import re

    hosts = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {}).get("worker", [])
    text, me = str(error), worker_index()[0]
    tasks = [int(t) for t in re.findall(r"job:worker/(?:replica:\d+/)?task:(\d+)", text)]
    for address in re.findall(r"ipv4:([\d.]+:\d+)", text):
        if address in hosts:
            tasks.insert(0, hosts.index(address))
    others = [t for t in dict.fromkeys(tasks) if t != me]
    if not others:
        return None, None
    return others[0], hosts[others[0]] if others[0] < len(hosts) else None


def worker_lost_error(error, checkpoint_dir):
    """The :class:`WorkerLost` for a collective that ended with ``error``."""
    index, host = lost_worker(error)
    who = f"worker {index} ({host})" if index is not None else "another worker"
    return WorkerLost(
        f"{who} of the multi-worker run stopped responding (killed, crashed or unreachable); "
        f"this worker (worker {worker_index()[0]}) stopped too. Run the same command on every "
        f"worker to resume from the newest checkpoint in {checkpoint_dir}.")


def fit_distributed(model, strategy, dataset, *, epochs, initial_epoch=0, validation_data=None,
                    callbacks=(), verbose="auto", steps_per_epoch=None):
    """``model.fit`` for strategies under which Keras 3's own loop does not run
    (``MultiWorkerMirroredStrategy``, keras-team/keras#20585): the same ``train_step`` and
    ``test_step``, run on every replica with ``strategy.run``, with the logs averaged over
    replicas and the callbacks called as ``fit`` calls them. Returns the ``History``.

    ``dataset`` yields *global* batches; each worker keeps its share of every batch (data
    sharding), so that, the losses being divided by the global batch, the gradients equal one
    device's on the same batches.
    """
    import keras

    def distribute(data):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        return strategy.experimental_distribute_dataset(data.with_options(options))

    def mean_logs(logs):
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in logs.items()}

    train_step = tf.function(lambda batch: mean_logs(strategy.run(model.train_step, (batch,))))
    test_step = tf.function(lambda batch: mean_logs(strategy.run(model.test_step, (batch,))))
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        list(callbacks) + [history], add_progbar=verbose not in (0, "0"), model=model,
        verbose=1 if verbose == "auto" else verbose, epochs=epochs, steps=steps_per_epoch)
    train_data = distribute(dataset)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        logs = {}
        for step, batch in enumerate(train_data):
            callback_list.on_train_batch_begin(step)
            logs = {k: float(v) for k, v in train_step(batch).items()}
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        if validation_data is not None and not model.stop_training:
            for metric in model.test_metrics:
                metric.reset_state()
            val = {}
            for batch in distribute(validation_data):
                val = test_step(batch)
            logs.update({f"val_{k}": float(v) for k, v in val.items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history
