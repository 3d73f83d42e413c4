"""See the GPUs and configure how TensorFlow uses them, safely, in a live kernel.

TensorFlow grabs (almost) all GPU memory when its runtime starts, and accepts the four ways of managing it only
*before* that moment: one GPU per process (``visible``), a fixed memory limit (``memory_limit_mb``), memory growth
on demand (``memory_growth``), and splitting one GPU into several logical devices (``split``). After it, every such
call fails; here it fails with a message that names the setting and the fix (restart the kernel and run the
configuration as the first cell). The same split works on CPUs (``cpu_split``), which is how the multi-device
code is exercised on a machine without a GPU.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from .errors import GpuConfigError, HomlEdgeError

NO_GPU = "no GPU: running on CPU"


def runtime_initialized() -> bool:
    """True once TensorFlow's runtime has set up its devices (after the first op, or listing logical devices)."""
    if "tensorflow" not in sys.modules:
        return False
    from tensorflow.python.eager import context

    return context.context()._context_handle is not None


def _restart_fix(setting: str, param: str, value) -> GpuConfigError:
    """The error for a setting that can no longer change: it names the call to run first (``{param=value}``)."""
    return GpuConfigError(f"{setting} cannot be changed in this kernel: TensorFlow's runtime is already initialised. "
                          f"Restart the kernel and run `{{{param}={value}}}` as the first cell, before any TensorFlow "
                          "work", param=param, call="he.gpu.configure")


def devices() -> dict:
    """Physical and logical devices, and for each GPU its name, compute capability and memory when known.

    Returns ``{"gpus": [...], "cpus": [...], "logical": [...] or None, "summary": str}``. ``logical`` is None until
    the runtime is initialised (listing logical devices would initialise it, so it is not done here).
    """
    from . import _tf

    tf = _tf.tf()
    gpus = []
    for i, d in enumerate(tf.config.list_physical_devices("GPU")):
        info = {"name": d.name, "index": i}
        try:
            det = tf.config.experimental.get_device_details(d)
            info["model"] = det.get("device_name")
            cc = det.get("compute_capability")
            info["compute_capability"] = f"{cc[0]}.{cc[1]}" if cc else None
        except Exception:
            pass
        info.update(_nvml_memory(i))
        gpus.append(info)
    cpus = [d.name for d in tf.config.list_physical_devices("CPU")]
    logical = [d.name for d in tf.config.list_logical_devices()] if runtime_initialized() else None
    if gpus:
        summary = f"{len(gpus)} GPU(s): " + ", ".join(
            f"{g['name']} ({g.get('model') or '?'}, cc {g.get('compute_capability') or '?'})" for g in gpus)
    else:
        summary = NO_GPU
        if logical and len(logical) > 1:
            summary += f" ({len(logical)} logical CPU devices)"
    return {"gpus": gpus, "cpus": cpus, "logical": logical, "summary": summary,
            "runtime_initialized": runtime_initialized()}


def _nvml_memory(index: int) -> dict:
    """Memory total/used from NVML (the optional ``nvidia-ml-py`` package); {} when it is unavailable."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {"memory_total_mb": mem.total // 2**20, "memory_used_mb": mem.used // 2**20}
    except Exception:
        return {}


def memory_info(device: str = "GPU:0") -> dict | None:
    """TensorFlow's own view of the memory it holds on ``device`` (current and peak, MB); None without a GPU."""
    from . import _tf

    tf = _tf.tf()
    if not tf.config.list_physical_devices("GPU"):
        return None
    info = tf.config.experimental.get_memory_info(device)
    return {"current_mb": info["current"] / 2**20, "peak_mb": info["peak"] / 2**20}


def configure(memory_growth: bool | None = None, memory_limit_mb: int | None = None, split=None,
              visible: str | None = None, cpu_split: int | None = None) -> dict:
    """Apply GPU (and CPU) device settings; returns ``{"applied": [...], "notes": [...]}``.

    - ``visible="0,1"``: which GPUs this process may see (sets ``CUDA_VISIBLE_DEVICES``); only before TensorFlow
      is imported.
    - ``memory_growth=True``: allocate GPU memory on demand instead of all at once.
    - ``memory_limit_mb=2048``: one logical device per GPU with at most that much memory.
    - ``split=[2048, 2048]``: split GPU 0 into logical devices of those sizes (``/GPU:0``, ``/GPU:1``...).
    - ``cpu_split=2``: split the CPU into that many logical devices (for multi-device code without a GPU).
    All but ``visible`` must run before the runtime initialises; afterwards a :class:`GpuConfigError` says which
    setting can no longer change and how to fix it (unless the setting already has the requested value).
    """
    applied, notes = [], []
    if visible is not None:
        ids = _parse_ids(visible)
        if "tensorflow" in sys.modules:
            raise GpuConfigError(
                "visible devices (CUDA_VISIBLE_DEVICES) are read when TensorFlow loads, and it is already loaded in "
                f"this kernel: restart the kernel and run `{{visible='{ids}'}}` as the first cell", param="visible",
                call="he.gpu.configure")
        os.environ["CUDA_VISIBLE_DEVICES"] = ids
        applied.append(f"CUDA_VISIBLE_DEVICES={ids}")
        if os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":  # number GPUs as nvidia-smi does, not fastest first
            os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
            applied.append("CUDA_DEVICE_ORDER=PCI_BUS_ID")
    if memory_limit_mb is not None and split is not None:
        raise HomlEdgeError("give either memory_limit_mb (one device per GPU) or split (several devices), not both")
    wants_tf = any(v is not None for v in (memory_growth, memory_limit_mb, split, cpu_split))
    if not wants_tf:
        return {"applied": applied, "notes": notes}
    if (memory_growth and (memory_limit_mb is not None or split is not None)):
        raise HomlEdgeError("memory growth and a memory limit exclude each other: choose one")
    from . import _tf

    tf = _tf.tf()
    gpus = tf.config.list_physical_devices("GPU")
    initialized = runtime_initialized()
    if cpu_split is not None:
        n = int(cpu_split)
        if n < 1:
            raise HomlEdgeError(f"cpu_split must be at least 1, got {cpu_split}")
        cpu = tf.config.list_physical_devices("CPU")[0]
        want = [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        current = tf.config.get_logical_device_configuration(cpu)
        if initialized:
            if current is not None and len(current) == n:
                notes.append(f"the CPU is already split into {n} logical devices")
            else:
                raise _restart_fix("the CPU split", "cpu_split", n)
        else:
            tf.config.set_logical_device_configuration(cpu, want)
            applied.append(f"CPU split into {n} logical devices")
    if not gpus:
        for name, value in (("memory_growth", memory_growth), ("memory_limit_mb", memory_limit_mb),
                            ("split", split)):
            if value is not None:
                notes.append(f"{NO_GPU}: {name} has no effect")
        return {"applied": applied, "notes": notes}
    if memory_growth is not None:
        for g in gpus:
            if initialized:
                if tf.config.experimental.get_memory_growth(g) != bool(memory_growth):
                    raise _restart_fix("memory growth", "memory_growth", bool(memory_growth))
                notes.append(f"memory growth is already {'on' if memory_growth else 'off'} for {g.name}")
            else:
                tf.config.experimental.set_memory_growth(g, bool(memory_growth))
                applied.append(f"memory growth {'on' if memory_growth else 'off'} for {g.name}")
    if memory_limit_mb is not None or split is not None:
        sizes = [int(memory_limit_mb)] if memory_limit_mb is not None else _parse_sizes(split)
        targets = gpus if memory_limit_mb is not None else gpus[:1]
        for g in targets:
            current = tf.config.get_logical_device_configuration(g)
            if initialized:
                have = [c.memory_limit for c in current] if current else None
                if have != sizes:
                    what = "the memory limit" if memory_limit_mb is not None else "the GPU split"
                    raise (_restart_fix(what, "memory_limit_mb", sizes[0]) if memory_limit_mb is not None
                           else _restart_fix(what, "split", f"\"{','.join(map(str, sizes))}\""))
                notes.append(f"{g.name} already has logical devices of {sizes} MB")
            else:
                tf.config.set_logical_device_configuration(
                    g, [tf.config.LogicalDeviceConfiguration(memory_limit=s) for s in sizes])
                applied.append(f"{g.name}: logical device(s) of {sizes} MB")
    return {"applied": applied, "notes": notes}


def allow_growth_env() -> str:
    """The whole-process route: set ``TF_FORCE_GPU_ALLOW_GROWTH=true`` (must happen before TensorFlow loads)."""
    if "tensorflow" in sys.modules:
        raise GpuConfigError("TF_FORCE_GPU_ALLOW_GROWTH is read when TensorFlow loads, and it is already loaded: "
                             "set it in the environment before starting Python (or restart the kernel and set it "
                             "first), or use {memory_growth=True} before any TensorFlow work", param="memory_growth",
                             call="he.gpu.configure")
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return "TF_FORCE_GPU_ALLOW_GROWTH=true"


_STRATEGIES: dict = {}


def mirrored_strategy(devices_=None):
    """A ``tf.distribute.MirroredStrategy`` over all GPUs, or over the logical CPUs when there is no GPU.

    One per set of devices and process: a second MirroredStrategy over the same devices numbers its collective
    operations from the same start, and training under both aborts with "Shape mismatch in the collective
    instance"; so a second call returns the first strategy."""
    return _one_strategy("mirrored", devices_, lambda tf, devices: tf.distribute.MirroredStrategy(devices=devices))


def _one_strategy(kind: str, devices_, make):
    """The process's one strategy of ``kind`` over ``devices_`` (default: every GPU, else every logical CPU)."""
    from . import _tf

    tf = _tf.tf()
    if devices_ is None:
        logical = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        devices_ = [d.name for d in logical]
    key = (kind, tuple(devices_))
    if key not in _STRATEGIES:
        _STRATEGIES[key] = make(tf, list(devices_))
    return _STRATEGIES[key]


# ------------------------------------------------------------------------------------ placement, threads, strategies
_PLUMBING = {"_Arg", "_Retval", "_DeviceArg", "_EagerConst", "NoOp", "Identity"}


def placements(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` eagerly and return ``(result, table)``: one row per operation it executed
    (``op`` type and ``device``), in order. What ``tf.debugging.set_log_device_placement(True)`` would print, but
    recorded for every execution: the log itself appears only when TensorFlow first creates a kernel for an op on a
    device (once per process), and in a notebook it goes to the kernel's console, not the cell."""
    from . import _tf
    from .report import Table

    with _tf.recording_ops() as seen:
        result = fn(*args, **kwargs)
    rows = [{"op": op, "device": (devices[0] if devices else "").rsplit("/", 1)[-1]}
            for op, devices in seen if op not in _PLUMBING]
    return result, Table(rows, columns=["op", "device"])


_THREADS_CHILD = """
import json, sys, time
import tensorflow as tf
inter, intra, size, streams, repeats = map(int, sys.argv[1:6])
tf.config.threading.set_inter_op_parallelism_threads(inter)
tf.config.threading.set_intra_op_parallelism_threads(intra)
xs = [tf.random.uniform((size, size), seed=i) for i in range(streams)]
@tf.function
def step(xs):
    return [tf.reduce_sum(tf.matmul(x, x)) for x in xs]   # independent matmuls: inter-op threads may overlap them
step(xs)
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); [v.numpy() for v in step(xs)]; times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"seconds": times[len(times) // 2]}))
"""


def thread_scaling(settings=((1, 1), (1, 2), (2, 1), (2, 2)), *, size: int = 1024, streams: int = 2,
                   repeats: int = 7, timeout_s: float = 300) -> "Table":
    """Throughput of one step of ``streams`` independent ``size`` x ``size`` matmuls under each (inter-op, intra-op)
    thread-pool setting. Each setting runs in a fresh Python process: the pools are fixed when TensorFlow's runtime
    starts. Returns a Table: ``inter_op``, ``intra_op``, ``step_ms`` (median), ``gflops``, ``speedup`` (vs. the
    first setting)."""
    from .report import Table

    rows = []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    for inter, intra in settings:
        if int(inter) < 1 or int(intra) < 1:
            raise HomlEdgeError(f"thread counts must be at least 1, got inter={inter}, intra={intra}")
        r = subprocess.run([sys.executable, "-c", _THREADS_CHILD, str(inter), str(intra), str(size), str(streams),
                            str(repeats)], capture_output=True, text=True, timeout=timeout_s, env=env)
        if r.returncode:
            raise HomlEdgeError(f"the thread-pool measurement failed (inter={inter}, intra={intra}): "
                                f"{(r.stderr.strip().splitlines() or ['no output'])[-1]}")
        sec = json.loads(r.stdout.strip().splitlines()[-1])["seconds"]
        rows.append({"inter_op": int(inter), "intra_op": int(intra), "step_ms": sec * 1e3,
                     "gflops": 2 * size ** 3 * streams / sec / 1e9})
    table = Table(rows)
    table["speedup"] = table.step_ms.iloc[0] / table.step_ms
    return table


def central_storage_strategy(devices_=None):
    """A ``CentralStorageStrategy``: variables on one device (the CPU), computation mirrored on the GPUs (or on the
    logical CPUs when there is no GPU); one per set of devices and process, like :func:`mirrored_strategy`."""
    return _one_strategy("central", devices_, lambda tf, devices: tf.distribute.experimental.CentralStorageStrategy(
        compute_devices=devices, parameter_device=tf.config.list_logical_devices("CPU")[0].name))


def strategy_step_times(build, x, y, strategies: dict, *, batch_size: int = 128, steps: int = 12,
                        repeats: int = 3) -> "Table":
    """Train a fresh ``build()`` model (compiled inside each strategy's scope) on ``(x, y)`` and time its steps.

    ``strategies``: ``{name: tf.distribute.Strategy}`` (``tf.distribute.get_strategy()`` is one device). Each is
    warmed up (tracing, the first all-reduce) with one epoch, then ``steps`` steps are timed ``repeats`` times; the
    median is kept. Returns a Table: ``replicas``, ``step_ms``, ``samples_per_s``, ``speedup`` (vs. the first).
    """
    import numpy as np

    from .report import Table

    rows = []
    x, y = np.asarray(x), np.asarray(y)
    n = batch_size * steps
    if len(x) < n:
        reps = -(-n // len(x))
        x, y = np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]
    for name, strategy in strategies.items():
        with strategy.scope():
            model = build()
        model.fit(x[:batch_size * 2], y[:batch_size * 2], batch_size=batch_size, epochs=1, verbose=0)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
            times.append((time.perf_counter() - t0) / steps)
        step = float(np.median(times))
        rows.append({"strategy": name, "replicas": int(strategy.num_replicas_in_sync), "step_ms": step * 1e3,
                     "samples_per_s": batch_size / step})
    table = Table(rows).set_index("strategy")
    table["speedup"] = table.step_ms.iloc[0] / table.step_ms
    return table


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


# ------------------------------------------------------------------------------------------- several worker processes
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


def multi_worker_fit(model, x, y, *, workers: int = 2, epochs: int = 3, batch_size: int = 64,
                     learning_rate: float = 0.05, timeout_s: float = 300) -> dict:
    """Train a copy of ``model`` (a tf_keras model; its architecture and current weights) with
    ``MultiWorkerMirroredStrategy`` in ``workers`` processes on 127.0.0.1 (free ports, ``TF_CONFIG`` from
    :func:`tf_config`), and the same copy on one device in one process, on the same global batches in the same order
    (SGD, no shuffling). Every process is killed if the job fails or takes longer than ``timeout_s``.

    Returns ``{"losses": Table (epoch x worker 0..n-1 and "one device"), "workers": [per-worker dict with "loss",
    "replicas", "weights"], "single": {...}, "max_diff_between_workers": float, "max_diff_vs_one_device": float,
    "tf_configs": [...], "seconds": float}``."""
    import shutil
    import tempfile

    import numpy as np

    from .report import Table

    if workers < 2:
        raise HomlEdgeError(f"a multi-worker job needs at least 2 workers, got {workers}")
    x, y = np.asarray(x), np.asarray(y)
    if batch_size % workers or len(x) < batch_size:
        raise HomlEdgeError(f"batch_size must be a multiple of the {workers} workers and at most the {len(x)} "
                            f"samples, got {batch_size}")
    folder = tempfile.mkdtemp(prefix="homl-edge-workers-")
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
        shutil.rmtree(folder, ignore_errors=True)

    def diff(a, b):
        return max(float(np.abs(u - v).max()) for u, v in zip(a, b))

    losses = Table({**{f"worker {i}": r["loss"] for i, r in enumerate(results)}, "one device": single["loss"]},
                   index=range(1, epochs + 1))
    losses.index.name = "epoch"
    return {"losses": losses, "workers": results, "single": single,
            "max_diff_between_workers": max(diff(results[0]["weights"], r["weights"]) for r in results[1:]),
            "max_diff_vs_one_device": diff(results[0]["weights"], single["weights"]),
            "tf_configs": configs, "seconds": time.perf_counter() - t0}


def _parse_ids(visible) -> str:
    ids = str(visible).replace(" ", "")
    if ids and not all(p.isdigit() for p in ids.split(",")):
        raise HomlEdgeError(f"visible takes GPU numbers such as '0' or '0,1' (or '' for none), got {visible!r}")
    return ids


def _parse_sizes(split) -> list[int]:
    if isinstance(split, str):
        split = [s for s in split.replace(" ", "").split(",") if s]
    try:
        sizes = [int(s) for s in split]
    except (TypeError, ValueError):
        raise HomlEdgeError(f"split takes memory sizes in MB such as [2048, 2048] or '2048,2048', got {split!r}") \
            from None
    if not sizes or any(s <= 0 for s in sizes):
        raise HomlEdgeError(f"split needs at least one positive size in MB, got {split!r}")
    return sizes
