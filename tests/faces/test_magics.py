"""Every magic through a real IPython shell: results, -o binding, and one-line UsageErrors."""
import numpy as np
import pytest
from IPython.core.error import UsageError

import homl_edge as he
from conftest import sha


@pytest.fixture(scope="module")
def ip(trained, digits):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "homl_edge")
    (x, y), (xt, yt) = digits
    shell.user_ns.update(model=trained, x_train=x, y_train=y, x_test=xt, y_test=yt, small_x=x[:256],
                         small_y=y[:256])
    yield shell
    shell.run_line_magic("unload_ext", "homl_edge")


def test_quantize_binds_saves_and_measures(ip, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    ip.run_line_magic("quantize", f"model --mode int8 --data x_train[:200] --eval x_test y_test --save {out} -o q")
    lite = ip.user_ns["q"]
    assert isinstance(lite, he.LiteModel) and lite.meta["mode"] == "int8"
    assert out.read_bytes() == lite.content
    shown = capsys.readouterr().out
    assert "accuracy" in shown and "latency_median_ms" in shown
    before = sha(out)
    with pytest.raises(UsageError, match="exists already"):
        ip.run_line_magic("quantize", f"model --mode int8 --data x_train[:200] --save {out}")
    assert sha(out) == before
    assert isinstance(ip.run_line_magic("quantize", "model --mode float16"), he.LiteModel)


@pytest.mark.parametrize("line, message", [
    ("nomodel --mode int8", "'nomodel' is not defined"),
    ("model --mode int9", "unknown mode 'int9'"),
    ("model --mode int8", "needs calibration data"),
    ("model --mode int8 --data x_train[:10,:4]", r"shape \(10, 4, 8, 1\)"),
    ("model --bogus", "unrecognized arguments: --bogus"),
    ("x_train --mode int8", "must be a Keras model"),
    ("model --mode int8 --data undefined_data", "'undefined_data' is not defined"),
])
def test_quantize_errors_are_usage_errors(ip, line, message):
    with pytest.raises(UsageError, match=message) as e:
        ip.run_line_magic("quantize", line)
    assert "\n" not in str(e.value)


def test_prune_cluster_qat(ip, capsys):
    ip.run_line_magic("prune", "model --train small_x small_y --sparsity 0.5 --epochs 1 -o pruned")
    assert isinstance(ip.user_ns["pruned"], he.sparsity.Pruned)  # -o binds the result (model and report)
    assert he.sparsity_report(ip.user_ns["pruned"]).sparsity.min() > 0.49
    assert "sparsity" in capsys.readouterr().out
    ip.run_line_magic("prune", "model --train small_x small_y --structure 2:4 --epochs 1 -o p24")
    assert all(he.check_m_by_n(ip.user_ns["p24"]).values())
    ip.run_line_magic("cluster", "model --train small_x small_y --clusters 8 -o clustered")
    assert isinstance(ip.user_ns["clustered"], he.clustering.Clustered)
    assert max(he.unique_weights(ip.user_ns["clustered"]).values()) <= 8
    ip.run_line_magic("qat", "model --train small_x small_y --epochs 1 -o qat_model")
    assert isinstance(ip.user_ns["qat_model"], he.qat.QuantizeAware)
    assert any("quant" in l.name for l in ip.user_ns["qat_model"].model.layers)
    with pytest.raises(UsageError, match="between 0 and 1"):
        ip.run_line_magic("prune", "model --train small_x small_y --sparsity 2")
    with pytest.raises(UsageError, match="the following arguments are required: --train"):
        ip.run_line_magic("cluster", "model")
    with pytest.raises(UsageError, match="1437 samples but y has 256"):
        ip.run_line_magic("qat", "model --train x_train small_y")


def test_export_targets(ip, tmp_path, capsys):
    ip.run_line_magic("quantize", "model --mode int8-io --data x_train[:100] -o lite_io")
    ip.run_line_magic("export", f"lite_io --c {tmp_path / 'model_data.cc'}")
    assert (tmp_path / "model_data.h").exists()
    ip.run_line_magic("export", f"model --tflite {tmp_path / 'f.tflite'}")
    assert he.load_lite(tmp_path / "f.tflite").meta["path"].endswith("f.tflite")
    result = ip.run_line_magic("export", f"model --tfjs {tmp_path / 'web'} --quantize uint8")
    assert (tmp_path / "web" / "model.json").exists() and result.quantize == "uint8"
    with pytest.raises(UsageError, match="exactly one of"):
        ip.run_line_magic("export", "model")
    with pytest.raises(UsageError, match="--c needs a LiteModel"):
        ip.run_line_magic("export", f"model --c {tmp_path / 'k.cc'}")
    with pytest.raises(UsageError, match="exists already"):
        ip.run_line_magic("export", f"lite_io --c {tmp_path / 'model_data.cc'}")


def test_compare_with_plot(ip, capsys):
    ip.run_line_magic("quantize", "model --mode float32 -o f32")
    ip.run_line_magic("quantize", "model --mode dynamic -o dyn")
    ip.run_line_magic("compare", "f32 dyn --eval x_test y_test --plot -o table")
    table = ip.user_ns["table"]
    assert list(table.index) == ["f32", "dyn"] and table.loc["dyn", "size_ratio"] > 3
    assert "Figure" in capsys.readouterr().out
    with pytest.raises(UsageError, match="'nothing' is not defined"):
        ip.run_line_magic("compare", "f32 nothing --eval x_test y_test")


def test_gpu_magic(ip, capsys):
    info = ip.run_line_magic("gpu", "")   # unbound: the cell's value, shown once by the notebook
    assert type(info) is he.gpu.Devices and "no GPU: running on CPU" not in capsys.readouterr().out
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        assert info.summary == "no GPU: running on CPU" and "no GPU: running on CPU" in info._repr_html_()
    ip.run_line_magic("gpu", "-o devices")   # bound: shown now
    assert ip.user_ns["devices"] == info and "Devices(" in capsys.readouterr().out
    with pytest.raises(UsageError, match="restart the kernel"):  # TensorFlow is loaded in this process
        ip.run_line_magic("gpu", "--visible 0")
    with pytest.raises(UsageError, match="not both"):
        ip.run_line_magic("gpu", "--growth --no-growth")


def test_help_text_for_every_magic(ip):
    from homl_edge.magics import MAGICS

    for name in MAGICS:
        doc = ip.find_line_magic(name).__doc__
        assert "Example:" in doc and f"%{name}" in doc and "options:" in doc


def test_an_optimized_result_writes_and_runs_the_file_it_made(ip, digits, tmp_path):
    """%export --tflite/--web/--c and %micro given optimize()'s result use the int8 file it made (its .lite): they
    wrote (or ran) a fresh float32 conversion of its .model, silently another model, 4x the bytes."""
    (x, _), (xt, _) = digits
    op = he.optimize(ip.user_ns["model"], "quantize", mode="int8", data=x[:100], progress=False)
    ip.user_ns["op"] = op
    ip.run_line_magic("export", f"op --tflite {tmp_path / 'op.tflite'}")
    assert (tmp_path / "op.tflite").read_bytes() == op.lite.content
    ip.run_line_magic("export", f"op --web {tmp_path / 'web'}")
    page = he.load_lite(tmp_path / "web" / "model.tflite")   # its batch fixed at 1 for LiteRT.js
    assert abs(page.size - op.lite.size) < 0.01 * op.lite.size
    c = ip.run_line_magic("export", f"op --c {tmp_path / 'op.cc'}")
    assert c.flash_bytes == op.lite.size
    ip.user_ns.update(few=xt[:3], few_y=digits[1][1][:3])
    run = ip.run_line_magic("micro", "op --eval few few_y -o run") or ip.user_ns["run"]   # TFLM runs that int8 file (a float32 one is 4x larger)
    assert run.flash_bytes == op.lite.size and run.argmax_agreement == 1.0
