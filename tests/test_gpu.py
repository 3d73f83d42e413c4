"""GPU configuration: exact behaviour after the runtime is up, and multi-device training on logical CPUs."""
import json

import pytest

from conftest import run_py


def test_no_gpu_answer_and_notes():
    r = run_py("import json, homl_edge as he\n"
               "info = he.gpu.devices()\n"
               "res = he.gpu.configure(memory_growth=True)\n"
               "print(json.dumps([info['summary'], info['runtime_initialized'], res]))")
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
out["before"] = he.gpu.configure(cpu_split=2)
tf.constant(1.0) + 1  # the runtime starts here
out["same_again"] = he.gpu.configure(cpu_split=2)
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
    r = run_py("import os, sys, homl_edge as he\nres = he.gpu.configure(visible='0,1')\n"
               "print(res['applied'], os.environ['CUDA_VISIBLE_DEVICES'], 'tensorflow' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['CUDA_VISIBLE_DEVICES=0,1'] 0,1 False"


def test_bad_settings():
    import homl_edge as he

    with pytest.raises(he.HomlEdgeError, match="GPU numbers"):
        he.gpu.configure(visible="first")
    with pytest.raises(he.HomlEdgeError, match="not both"):
        he.gpu.configure(memory_limit_mb=100, split=[50, 50])


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
k = [w for w in qat.weights if "kernel" in w.name and "dense" in w.name][0]
copies = [v.device for v in k.values]
same = all(np.array_equal(k.values[0].numpy(), v.numpy()) for v in k.values)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "devices": copies, "same": same,
                  "sparsity": float(he.sparsity_report(pruned).sparsity.min()),
                  "accuracy": float((pruned.predict(xt, verbose=0).argmax(1) == yt).mean())}))
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
print(json.dumps({"device": b.device, "logical": he.gpu.devices()["logical"], "mem": he.gpu.memory_info("GPU:1")}))
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["device"].endswith("GPU:1") and sum("GPU" in d for d in out["logical"]) == 2
