"""Several worker processes: the ``TF_CONFIG`` each reads (made and checked here) and a
``MultiWorkerMirroredStrategy`` job on 127.0.0.1 compared with one device. ``homl_edge.gpu`` exports every name.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from ._result import Record, result
from .errors import HomlEdgeError


def tf_config(workers, index: int, *, task_type: str = "worker", chief: str | None = None) -> str:
    """The ``TF_CONFIG`` that each process of a ``MultiWorkerMirroredStrategy`` job reads: the whole cluster
    (every worker's ``host:port``, the same list, in the same order, everywhere) and this process's own task.
    Validated here: host:port forms, no address twice, the index inside the list. Set it in the environment
    before the strategy is created; worker 0 (or the chief) is the one that saves checkpoints."""
    workers = [str(w).strip() for w in (workers.split(",") if isinstance(workers, str) else workers)]
    cluster = {"worker": workers}
    if chief is not None:
        cluster = {"chief": [str(chief).strip()], **cluster}
    cfg = {"cluster": cluster, "task": {"type": task_type, "index": int(index)}}
    check_tf_config(cfg)
    return json.dumps(cfg)


def check_tf_config(config) -> dict:
    """Parse and check a ``TF_CONFIG`` (a JSON string or a dict); returns it as a dict or raises one line saying
    what is wrong."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as e:
            raise HomlEdgeError(f"TF_CONFIG is not JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not config["cluster"]:
        raise HomlEdgeError('TF_CONFIG needs a "cluster": {"worker": ["host:port", ...]}')
    seen = set()
    for kind, addresses in config["cluster"].items():
        if kind not in ("chief", "worker", "ps", "evaluator"):
            raise HomlEdgeError(f"TF_CONFIG cluster has an unknown task type {kind!r}: chief, worker, ps or evaluator")
        if not isinstance(addresses, list) or not addresses:
            raise HomlEdgeError(f"TF_CONFIG cluster {kind!r} must be a non-empty list of 'host:port'")
        for a in addresses:
            m = re.fullmatch(r"([A-Za-z0-9.\-\[\]:]+):(\d{1,5})", str(a))
            if not m or not 0 < int(m.group(2)) < 65536:
                raise HomlEdgeError(f"TF_CONFIG address {a!r} is not host:port (e.g. 'localhost:12345')")
            if a in seen:
                raise HomlEdgeError(f"TF_CONFIG lists {a!r} twice: every task needs its own port")
            seen.add(a)
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise HomlEdgeError('TF_CONFIG needs this process\'s "task": {"type": "worker", "index": N}')
    if task["type"] not in config["cluster"]:
        raise HomlEdgeError(f"TF_CONFIG task type {task['type']!r} is not in the cluster "
                            f"({', '.join(config['cluster'])})")
    n = len(config["cluster"][task["type"]])
    if not isinstance(task["index"], int) or not 0 <= task["index"] < n:
        raise HomlEdgeError(f"TF_CONFIG task index {task['index']!r} is outside the {n} {task['type']} address(es) "
                            f"(0 to {n - 1})")
    if config["cluster"].get("chief") and len(config["cluster"]["chief"]) != 1:
        raise HomlEdgeError("TF_CONFIG may name one chief, not several")
    return config


_WORKER_CHILD = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
folder, epochs, batch, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
import numpy as np
import tensorflow as tf
import tf_keras as k
multi = "TF_CONFIG" in os.environ
# the strategy first: it starts this worker's server and waits until every worker is up
strategy = tf.distribute.MultiWorkerMirroredStrategy() if multi else tf.distribute.get_strategy()
x, y = np.load(os.path.join(folder, "x.npy")), np.load(os.path.join(folder, "y.npy"))
steps = len(x) // batch
with strategy.scope():
    model = k.models.model_from_json(open(os.path.join(folder, "model.json")).read())
    model.set_weights(list(np.load(os.path.join(folder, "weights.npz")).values()))
    model.compile(k.optimizers.SGD(lr), "sparse_categorical_crossentropy")

def part(context):
    # global batch b is samples [b*batch, (b+1)*batch); input pipeline i of n takes its i-th slice of each: together
    # the workers see exactly the batches one device sees, in the same order
    per = context.get_per_replica_batch_size(batch)
    i = context.input_pipeline_id
    idx = np.concatenate([np.arange(b * batch + i * per, b * batch + (i + 1) * per) for b in range(steps)])
    return tf.data.Dataset.from_tensor_slices((x[idx], y[idx])).batch(per).repeat()

if multi:
    data = strategy.distribute_datasets_from_function(part)
else:
    data = tf.data.Dataset.from_tensor_slices((x[:steps * batch], y[:steps * batch])).batch(batch).repeat()
history = model.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0)
np.savez(os.path.join(folder, f"out-{os.environ.get('HOML_EDGE_TASK', 'single')}.npz"), *model.get_weights())
print(json.dumps({"loss": [float(v) for v in history.history["loss"]], "replicas": strategy.num_replicas_in_sync,
                  "devices": [d.name for d in tf.config.list_logical_devices()]}))
"""


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` TCP ports that are free on ``host`` now (the operating system picks them)."""
    import socket

    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@result
class MultiWorkerRun(Record):
    """What :func:`multi_worker_fit` measured: ``losses`` (a Table, epoch x worker and "one device"; also
    ``to_frame()``), each worker's ``loss``, ``replicas`` and ``weights`` (``workers``), the same for the one-device
    run (``single``), the largest weight difference between workers and against one device, the ``TF_CONFIG`` of
    each worker and the ``seconds`` it all took. A frozen record, also a read-only mapping (``run["losses"]``)."""

    losses: object  # Table
    workers: list
    single: dict
    max_diff_between_workers: float
    max_diff_vs_one_device: float
    tf_configs: list
    seconds: float

    def to_frame(self):
        return self.losses


def multi_worker_fit(model, x, y, *, workers: int = 2, epochs: int = 3, batch_size: int = 64,
                     learning_rate: float = 0.05, timeout_s: float = 300) -> MultiWorkerRun:
    """Train a copy of ``model`` (a tf_keras model; its architecture and current weights) with
    ``MultiWorkerMirroredStrategy`` in ``workers`` processes on 127.0.0.1 (free ports, ``TF_CONFIG`` from
    :func:`tf_config`), and the same copy on one device in one process, on the same global batches in the same order
    (SGD, no shuffling). Every process is killed if the job fails or takes longer than ``timeout_s``.

    Returns a :class:`MultiWorkerRun`: ``losses`` (a Table, epoch x worker 0..n-1 and "one device"), ``workers``
    (per-worker dicts with "loss", "replicas", "weights"), ``single``, ``max_diff_between_workers``,
    ``max_diff_vs_one_device``, ``tf_configs`` and ``seconds`` (``run["losses"]`` as when it was a dict)."""
    import numpy as np

    from ._files import process_folder, release
    from .report import Table

    if workers < 2:
        raise HomlEdgeError(f"a multi-worker job needs at least 2 workers, got {workers}")
    x, y = np.asarray(x), np.asarray(y)
    if batch_size % workers or len(x) < batch_size:
        raise HomlEdgeError(f"batch_size must be a multiple of the {workers} workers and at most the {len(x)} "
                            f"samples, got {batch_size}")
    folder = process_folder("homl-edge-workers-")   # the model, weights and data the workers read
    t0 = time.perf_counter()
    try:
        open(os.path.join(folder, "model.json"), "w").write(model.to_json())
        np.savez(os.path.join(folder, "weights.npz"), *model.get_weights())
        np.save(os.path.join(folder, "x.npy"), x)
        np.save(os.path.join(folder, "y.npy"), y)
        hosts = [f"127.0.0.1:{p}" for p in free_ports(workers)]
        configs = [tf_config(hosts, index=i) for i in range(workers)]
        args = [sys.executable, "-c", _WORKER_CHILD, folder, str(epochs), str(batch_size), str(learning_rate)]
        base = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        base.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")

        def run(envs, what):
            procs = [subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for e in envs]
            deadline = time.monotonic() + timeout_s
            outs = []
            try:
                for p in procs:
                    out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
                    if p.returncode:
                        lines = [l for l in err.strip().splitlines() if l.strip()] or ["no output"]
                        raise HomlEdgeError(f"{what} failed (exit code {p.returncode}): {lines[-1][:300]}")
                    outs.append(json.loads(out.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                raise HomlEdgeError(f"{what} did not finish within {timeout_s:.0f} s (are the ports "
                                    f"{', '.join(hosts)} reachable?): every process was stopped") from None
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            return outs

        results = run([{**base, "TF_CONFIG": c, "HOML_EDGE_TASK": str(i)} for i, c in enumerate(configs)],
                      f"the {workers}-worker job")
        single = run([base], "the one-device run")[0]
        for i, r in enumerate(results):
            r["weights"] = list(np.load(os.path.join(folder, f"out-{i}.npz")).values())
        single["weights"] = list(np.load(os.path.join(folder, "out-single.npz")).values())
    finally:
        release(folder)

    def diff(a, b):
        return max(float(np.abs(u - v).max()) for u, v in zip(a, b))

    losses = Table({**{f"worker {i}": r["loss"] for i, r in enumerate(results)}, "one device": single["loss"]},
                   index=range(1, epochs + 1))
    losses.index.name = "epoch"
    return MultiWorkerRun(losses=losses, workers=results, single=single,
                          max_diff_between_workers=max(diff(results[0]["weights"], r["weights"]) for r in results[1:]),
                          max_diff_vs_one_device=diff(results[0]["weights"], single["weights"]),
                          tf_configs=configs, seconds=time.perf_counter() - t0)
