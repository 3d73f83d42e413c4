"""Distribution strategies (one per set of devices and process), their measured step times, and where each op of a
function ran. ``homl_edge.gpu`` exports every name.
"""
from __future__ import annotations

import time

from ._result import Result, result

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


_PLUMBING = {"_Arg", "_Retval", "_DeviceArg", "_EagerConst", "NoOp", "Identity"}


@result
class Placements(Result):
    """What :func:`placements` recorded: ``value``, what the function returned, and ``table``, one row per operation
    it executed (``op`` type and ``device``), in order; ``to_frame()`` is that table. (Up to 0.2.0 it was a tuple
    ``(value, table)``: read ``p.value`` and ``p.table`` instead.)"""

    value: object
    table: object  # a Table (pandas DataFrame)

    def to_frame(self):
        return self.table


def placements(fn, *args, **kwargs) -> Placements:
    """Run ``fn(*args, **kwargs)`` eagerly and return a :class:`Placements`: its ``value``, and its ``table`` with
    one row per operation it executed (``op`` type and ``device``), in order. What
    ``tf.debugging.set_log_device_placement(True)`` would print, but
    recorded for every execution: the log itself appears only when TensorFlow first creates a kernel for an op on a
    device (once per process), and in a notebook it goes to the kernel's console, not the cell."""
    from . import _tf
    from .report import Table

    with _tf.recording_ops() as seen:
        result = fn(*args, **kwargs)
    rows = [{"op": op, "device": (devices[0] if devices else "").rsplit("/", 1)[-1]}
            for op, devices in seen if op not in _PLUMBING]
    return Placements(value=result, table=Table(rows, columns=["op", "device"]))


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
