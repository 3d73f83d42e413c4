"""How TensorFlow's inter-op and intra-op thread pools scale, each setting measured in a fresh Python process (the
pools are fixed when the runtime starts). ``homl_edge.gpu`` exports every name.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from .errors import HomlEdgeError


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
