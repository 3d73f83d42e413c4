"""See the GPUs and configure how TensorFlow uses them, safely, in a live kernel.

TensorFlow grabs (almost) all GPU memory when its runtime starts, and accepts the four ways of managing it only
*before* that moment: one GPU per process (``visible``), a fixed memory limit (``memory_limit_mb``), memory growth
on demand (``memory_growth``), and splitting one GPU into several logical devices (``split``). After it, every such
call fails; here it fails with a message that names the setting and the fix (restart the kernel and run the
configuration as the first cell). The same split works on CPUs (``cpu_split``), which is how the multi-device
code is exercised on a machine without a GPU.

This file holds the device settings; strategies and op placement (``_strategies``), the thread-pool measurement
(``_threads``) and ``TF_CONFIG`` with several worker processes (``_workers``) have files of their own.
"""
from __future__ import annotations

import html
import os
import sys

# the parts, one job each (this file: device settings), and every name this module exported before they moved
from ._strategies import (_PLUMBING, _STRATEGIES, Placements, _one_strategy,  # noqa: F401
                          central_storage_strategy, mirrored_strategy, placements, strategy_step_times)
from ._threads import _THREADS_CHILD, thread_scaling  # noqa: F401
from ._workers import (_WORKER_CHILD, MultiWorkerRun, check_tf_config, free_ports,  # noqa: F401
                       multi_worker_fit, tf_config)
from ._result import Record, result
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


@result
class Devices(Record):
    """What :func:`devices` found (a frozen record, also a read-only mapping: ``info["gpus"]``): one dict per GPU
    (``name``, ``index``, ``model``, ``compute_capability``, memory when NVML knows it), the CPU device names, the
    logical devices (None until the runtime is initialised), a one-line ``summary`` and whether the runtime is up."""

    gpus: list
    cpus: list
    logical: list | None
    summary: str
    runtime_initialized: bool

    def to_frame(self):
        """One row per GPU (an empty frame without one)."""
        import pandas as pd

        return pd.DataFrame(self.gpus)

    def _repr_html_(self):
        from ._table import Table

        gpus = Table(self.to_frame())._repr_html_() if self.gpus else ""
        logical = ", ".join(self.logical) if self.logical else "runtime not started yet (settings still allowed)"
        return (f"<p><b>{html.escape(self.summary)}</b></p>{gpus}"
                f"<p>logical devices: {html.escape(logical)}</p>")


def devices() -> Devices:
    """Physical and logical devices, and for each GPU its name, compute capability and memory when known.

    Returns a :class:`Devices` (``gpus``, ``cpus``, ``logical`` or None, ``summary``, ``runtime_initialized``; read
    as ``info["gpus"]`` or ``info.gpus``). ``logical`` is None until the runtime is initialised (listing logical
    devices would initialise it, so it is not done here).
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
    return Devices(gpus=gpus, cpus=cpus, logical=logical, summary=summary,
                   runtime_initialized=runtime_initialized())


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


@result
class MemoryInfo(Record):
    """TensorFlow's own view of the memory it holds on one GPU (:func:`memory_info`): current and peak, in MB."""

    device: str
    current_mb: float
    peak_mb: float


def memory_info(device: str = "GPU:0") -> MemoryInfo | None:
    """TensorFlow's own view of the memory it holds on ``device`` (a :class:`MemoryInfo`: ``current_mb`` and
    ``peak_mb``); None without a GPU."""
    from . import _tf

    tf = _tf.tf()
    if not tf.config.list_physical_devices("GPU"):
        return None
    info = tf.config.experimental.get_memory_info(device)
    return MemoryInfo(device=device, current_mb=info["current"] / 2**20, peak_mb=info["peak"] / 2**20)


@result
class Configured(Record):
    """What :func:`configure` did: the settings ``applied`` (one line each) and ``notes`` (settings that already
    had the requested value, and the like). A frozen record, also a read-only mapping (``result["applied"]``)."""

    applied: list
    notes: list

    def to_frame(self):
        """One row per setting applied and per note, in full."""
        import pandas as pd

        return pd.DataFrame([("applied", a) for a in self.applied] + [("note", n) for n in self.notes],
                            columns=["kind", "setting"])

    def _repr_html_(self):
        lines = [f"applied: {a}" for a in self.applied] + [f"note: {n}" for n in self.notes]
        return "".join(f"<p>{html.escape(t)}</p>" for t in lines) or "<p>nothing to apply</p>"


def configure(memory_growth: bool | None = None, memory_limit_mb: int | None = None, split=None,
              visible: str | None = None, cpu_split: int | None = None) -> Configured:
    """Apply GPU (and CPU) device settings; returns a :class:`Configured` (``result["applied"]``, ``["notes"]``).

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
        return Configured(applied=applied, notes=notes)
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
        return Configured(applied=applied, notes=notes)
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
    return Configured(applied=applied, notes=notes)


def allow_growth_env() -> str:
    """The whole-process route: set ``TF_FORCE_GPU_ALLOW_GROWTH=true`` (must happen before TensorFlow loads)."""
    if "tensorflow" in sys.modules:
        raise GpuConfigError("TF_FORCE_GPU_ALLOW_GROWTH is read when TensorFlow loads, and it is already loaded: "
                             "set it in the environment before starting Python (or restart the kernel and set it "
                             "first), or use {memory_growth=True} before any TensorFlow work", param="memory_growth",
                             call="he.gpu.configure")
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return "TF_FORCE_GPU_ALLOW_GROWTH=true"


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
