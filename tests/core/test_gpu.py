"""GPU configuration: exact behaviour after the runtime is up, and multi-device training on logical CPUs."""
import json

import pytest

from conftest import run_py


def test_no_gpu_answer_and_notes():
    r = run_py("import json, homl_edge as he\n"
               "info = he.gpu.devices()\n"
               "res = he.gpu.configure(memory_growth=True)\n"
               "print(json.dumps([info['summary'], info['runtime_initialized'], dict(res)]))")
    assert r.returncode == 0, r.stderr
    summary, initialized, res = json.loads(r.stdout.strip().splitlines()[-1])
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the no-GPU answer does not apply")
    assert summary == "no GPU: running on CPU"
    assert initialized is False  # listing devices did not start the runtime
    assert res == {"applied": [], "notes": ["no GPU: running on CPU: memory_growth has no effect"]}


def test_settings_after_the_runtime_started_name_the_setting_and_the_fix():
    code = r"""
import json, homl_edge as he
tf = he._tf.tf()
out = {}
out["before"] = dict(he.gpu.configure(cpu_split=2))  # a Configured record: json takes dicts
tf.constant(1.0) + 1  # the runtime starts here
out["same_again"] = dict(he.gpu.configure(cpu_split=2))
for name, kwargs in [("cpu_split", {"cpu_split": 3}), ("visible", {"visible": "0"})]:
    try:
        he.gpu.configure(**kwargs)
        out[name] = None
    except he.HomlEdgeError as e:
        out[name] = [type(e).__name__, str(e)]
try:
    he.gpu.allow_growth_env()
except he.HomlEdgeError as e:
    out["env"] = str(e)
out["logical"] = he.gpu.devices()["logical"]
print(json.dumps(out))
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["before"]["applied"] == ["CPU split into 2 logical devices"]
    assert out["same_again"]["notes"] == ["the CPU is already split into 2 logical devices"]
    kind, msg = out["cpu_split"]
    assert kind == "GpuConfigError"
    assert msg == ("the CPU split cannot be changed in this kernel: TensorFlow's runtime is already initialised. "
                   "Restart the kernel and run `he.gpu.configure(cpu_split=3)` as the first cell, before any "
                   "TensorFlow work")
    assert "CUDA_VISIBLE_DEVICES" in out["visible"][1] and "restart the kernel" in out["visible"][1]
    assert "TF_FORCE_GPU_ALLOW_GROWTH" in out["env"]
    assert out["logical"] == ["/device:CPU:0", "/device:CPU:1"]


def test_environment_route_before_tensorflow_loads():
    r = run_py("import os, homl_edge as he\nprint(he.gpu.allow_growth_env(), os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["TF_FORCE_GPU_ALLOW_GROWTH=true", "true"]


def test_visible_before_tensorflow_sets_cuda_visible_devices():
    r = run_py("import os, sys, homl_edge as he\nos.environ.pop('CUDA_DEVICE_ORDER', None)\n"
               "res = he.gpu.configure(visible='0,1')\n"
               "print(res['applied'], os.environ['CUDA_VISIBLE_DEVICES'], os.environ['CUDA_DEVICE_ORDER'], "
               "'tensorflow' in sys.modules)")
    assert r.returncode == 0, r.stderr
    # numbered as nvidia-smi numbers them (PCI bus order), not CUDA's fastest-first default
    assert r.stdout.strip() == "['CUDA_VISIBLE_DEVICES=0,1', 'CUDA_DEVICE_ORDER=PCI_BUS_ID'] 0,1 PCI_BUS_ID False"


def test_bad_settings():
    import homl_edge as he

    with pytest.raises(he.HomlEdgeError, match="GPU numbers"):
        he.gpu.configure(visible="first")
    with pytest.raises(he.HomlEdgeError, match="not both"):
        he.gpu.configure(memory_limit_mb=100, split=[50, 50])


@pytest.mark.chapter("08_gpus")   # cell 11: QAT and pruning with MirroredStrategy on the same split, the same asserts
def test_mirrored_fine_tuning_on_two_logical_cpus():
    code = r"""
import json, numpy as np, homl_edge as he
he.gpu.configure(cpu_split=2)
tf = he._tf.tf()
strategy = he.gpu.mirrored_strategy()
model, ((x, y), (xt, yt)) = he.models.trained_digits_cnn(epochs=3)
pruned = he.prune(model, (x, y), sparsity=0.5, epochs=1, strategy=strategy, progress=False)
qat = he.quantize_aware(model, (x[:512], y[:512]), epochs=1, strategy=strategy, progress=False)
# the trained weights are mirrored: one copy per device, kept equal by all-reduce
k = [w for w in qat.model.weights if "kernel" in w.name and "dense" in w.name][0]
copies = [v.device for v in k.values]
same = all(np.array_equal(k.values[0].numpy(), v.numpy()) for v in k.values)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "devices": copies, "same": same,
                  "sparsity": float(he.sparsity_report(pruned).sparsity.min()),
                  "accuracy": float((pruned.model.predict(xt, verbose=0).argmax(1) == yt).mean())}))
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert sorted(d.split("/")[-1] for d in out["devices"]) == ["device:CPU:0", "device:CPU:1"]
    assert out["same"] is True
    assert out["sparsity"] > 0.49 and out["accuracy"] > 0.85


@pytest.mark.gpu
def test_physical_gpu_split_and_placement():
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("needs a physical GPU: none on this machine (the split is tested on logical CPUs above)")
    code = r"""
import json, homl_edge as he
he.gpu.configure(split=[512, 512])
tf = he._tf.tf()
with tf.device("/GPU:1"):
    a = tf.random.uniform((256, 256)); b = a @ a
print(json.dumps({"device": b.device, "logical": he.gpu.devices()["logical"],
                  "mem": dict(he.gpu.memory_info("GPU:1"))}))
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["device"].endswith("GPU:1") and sum("GPU" in d for d in out["logical"]) == 2


def test_placement_log_and_strategy_step_times_on_two_logical_cpus():
    """Chapter 08's measurements: the placement log as a table, and one training step under each strategy."""
    code = """import json, homl_edge as he
he.gpu.configure(cpu_split=2)
tf = he.tensorflow()
def work():
    with tf.device('/CPU:1'):
        b = tf.random.uniform((64, 64), seed=0) @ tf.ones((64, 64))
    return tf.reduce_sum(b)
log = he.gpu.placements(work).table
again = he.gpu.placements(work).to_frame()  # the same table
k = he._keras.legacy()
def build():
    m = k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(32, activation='relu'),
                      k.layers.Dense(10, activation='softmax')])
    m.compile('adam', 'sparse_categorical_crossentropy')
    return m
(x, y), _ = he.datasets.digits()
steps = he.gpu.strategy_step_times(build, x, y, {'one': tf.distribute.get_strategy(),
    'mirrored': he.gpu.mirrored_strategy(), 'central': he.gpu.central_storage_strategy()}, batch_size=64, steps=4,
    repeats=1)
with he.gpu.central_storage_strategy().scope():
    v = build().layers[-1].kernel
# a second strategy over the same devices is the first: two would abort on colliding collective instances
assert he.gpu.mirrored_strategy() is he.gpu.mirrored_strategy()
with he.gpu.mirrored_strategy().scope():
    again_model = build()
again_model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)
print(json.dumps({"log": log.to_dict("records"), "again": again.to_dict("records"), "replicas": steps.replicas.tolist(),
                  "step_ms": steps.step_ms.tolist(), "speedup0": float(steps.speedup.iloc[0]),
                  "central": v.device, "mirrored_type": type(he.gpu.mirrored_strategy()).__name__}))
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [(row["op"], row["device"]) for row in out["log"]] == [
        ("RandomUniform", "device:CPU:1"), ("Fill", "device:CPU:1"), ("MatMul", "device:CPU:1"),
        ("Sum", "device:CPU:0")]
    assert out["again"] == out["log"]  # recorded on every run, not only when a kernel is first created
    assert out["replicas"] == [1, 2, 2] and all(ms > 0 for ms in out["step_ms"]) and out["speedup0"] == 1.0
    assert out["central"].endswith("CPU:0")


def test_thread_scaling_runs_each_setting_in_its_own_process():
    import homl_edge as he

    t = he.gpu.thread_scaling(((1, 1), (1, 2)), size=128, streams=2, repeats=3)
    assert t[["inter_op", "intra_op"]].values.tolist() == [[1, 1], [1, 2]]
    assert t.speedup.iloc[0] == 1.0 and (t.gflops > 0).all()
    assert t.gflops.iloc[0] == pytest.approx(2 * 128 ** 3 * 2 / (t.step_ms.iloc[0] / 1e3) / 1e9)
    with pytest.raises(he.HomlEdgeError, match="thread counts must be at least 1"):
        he.gpu.thread_scaling(((0, 1),))


def test_tf_config_is_built_and_checked():
    import homl_edge as he

    cfg = json.loads(he.gpu.tf_config("a:1, b:2", index=1, chief="c:3"))
    assert cfg == {"cluster": {"chief": ["c:3"], "worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    for bad, message in [
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "outside the 1 worker"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "twice"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "is not host:port"),
        ('{"cluster": {"worker": ["a:70000"]}, "task": {"type": "worker", "index": 0}}', "is not host:port"),
        ('{"cluster": {"boss": ["a:1"]}, "task": {"type": "boss", "index": 0}}', "unknown task type 'boss'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task type 'chief' is not in"),
        ('{"cluster": {"worker": ["a:1"]}}', 'needs this process\'s "task"'),
        ('{"task": {}}', 'needs a "cluster"'),
        ("{", "is not JSON"),
    ]:
        with pytest.raises(he.HomlEdgeError, match=message):
            he.gpu.check_tf_config(bad)


@pytest.mark.chapter("08_gpus")   # cell 13: the same two workers, losses and weight differences (3 epochs)
def test_two_worker_processes_train_like_one_device(digits):
    """MultiWorkerMirroredStrategy on a real engine: two worker processes on 127.0.0.1 (free ports, TF_CONFIG from
    he.gpu.tf_config) train one model; both report the same loss each epoch, end with the same weights, and match
    one device trained on the same batches within 1e-5 (float sums in another order: 1.2e-7 measured)."""
    import homl_edge as he

    (x, y), _ = digits
    k = he._keras.legacy()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(8, 3, activation="relu"), k.layers.Flatten(),
                          k.layers.Dense(10, activation="softmax")])
    before = [w.copy() for w in model.get_weights()]
    run = he.gpu.multi_worker_fit(model, x, y, workers=2, epochs=2, batch_size=64)
    losses = run["losses"]
    assert isinstance(run, he.gpu.MultiWorkerRun) and run.to_frame() is losses and "\n" not in repr(run)
    print(losses, run["max_diff_between_workers"], run["max_diff_vs_one_device"], f"{run['seconds']:.0f} s")
    assert [w["replicas"] for w in run["workers"]] == [2, 2] and run["single"]["replicas"] == 1
    assert json.loads(run["tf_configs"][1])["task"] == {"type": "worker", "index": 1}
    assert all(h.startswith("127.0.0.1:") for h in json.loads(run["tf_configs"][0])["cluster"]["worker"])
    assert list(losses.columns) == ["worker 0", "worker 1", "one device"] and len(losses) == 2
    assert losses["worker 0"].iloc[-1] < losses["worker 0"].iloc[0]          # it trained
    assert (losses["worker 0"] == losses["worker 1"]).all()
    assert abs(losses["worker 0"] - losses["one device"]).max() < 1e-5
    assert run["max_diff_between_workers"] == 0.0 and run["max_diff_vs_one_device"] < 1e-5
    assert all((a == b).all() for a, b in zip(before, model.get_weights()))  # the caller's model is untouched


def test_multi_worker_job_is_bounded_and_refuses_bad_shapes(digits):
    import time

    import homl_edge as he

    (x, y), _ = digits
    k = he._keras.legacy()
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])
    with pytest.raises(he.HomlEdgeError, match="multiple of the 2 workers"):
        he.gpu.multi_worker_fit(model, x, y, batch_size=63)
    with pytest.raises(he.HomlEdgeError, match="at least 2 workers"):
        he.gpu.multi_worker_fit(model, x, y, workers=1)
    t0 = time.perf_counter()
    with pytest.raises(he.HomlEdgeError, match="did not finish within 2 s.*every process was stopped"):
        he.gpu.multi_worker_fit(model, x, y, timeout_s=2)   # TensorFlow alone takes longer to import
    assert time.perf_counter() - t0 < 30
