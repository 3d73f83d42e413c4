"""The homl-edge command line: every command, and one-line errors with exit status 2."""
import subprocess
import sys

import numpy as np
import pytest

from homl_edge import cli
from conftest import sha


@pytest.fixture(scope="module")
def files(trained, digits, tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (x, y), (xt, yt) = digits
    trained.save(d / "model.keras")
    np.save(d / "calib.npy", x[:100])
    np.save(d / "xt.npy", xt)
    np.save(d / "yt.npy", yt)
    return d


def test_quantize_inspect_export_compare(files, capsys):
    d = files
    assert cli.main(["quantize", str(d / "model.keras"), "--mode", "int8-io", "--calib", str(d / "calib.npy"),
                     "-o", str(d / "m.tflite")]) == 0
    assert "mode int8-io" in capsys.readouterr().out
    assert cli.main(["inspect", str(d / "m.tflite")]) == 0
    out = capsys.readouterr().out
    assert "CONV_2D" in out and "int8" in out and "quantized:" in out
    assert cli.main(["inspect", str(d / "m.tflite"), "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["inputs"][0]["dtype"] == "int8" and info["ops"]["FULLY_CONNECTED"] == 2
    assert cli.main(["export-c", str(d / "m.tflite"), "-o", str(d / "model_data.cc")]) == 0
    assert (d / "model_data.h").exists() and "bytes of flash" in capsys.readouterr().out
    assert cli.main(["export-tfjs", str(d / "model.keras"), str(d / "web"), "--quantize", "float16"]) == 0
    assert (d / "web" / "model.json").exists() and "weights" in capsys.readouterr().out
    assert cli.main(["compare", str(d / "model.keras"), str(d / "m.tflite"), "--x", str(d / "xt.npy"),
                     "--y", str(d / "yt.npy"), "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("variant,kind,size_bytes") and len(lines) == 3


def test_prune_command(files, capsys):
    d = files
    assert cli.main(["prune", str(d / "model.keras"), "--x", str(d / "calib.npy"), "--y", str(d / "yt.npy"),
                     "-o", str(d / "p.keras")]) == 2  # 100 inputs but 360 labels
    assert "100 samples but y has 360" in capsys.readouterr().err
    np.save(d / "y100.npy", np.load(d / "yt.npy")[:100])
    assert cli.main(["prune", str(d / "model.keras"), "--x", str(d / "calib.npy"), "--y", str(d / "y100.npy"),
                     "--sparsity", "0.5", "--epochs", "1", "--quiet", "-o", str(d / "p.keras")]) == 0
    assert "0.5" in capsys.readouterr().out and (d / "p.keras").exists()


@pytest.mark.parametrize("args, message", [
    (["quantize", "missing.keras", "-o", "x.tflite"], "no model file at missing.keras"),
    (["quantize", "{d}/model.keras", "--mode", "int8", "-o", "{d}/x.tflite"], "needs calibration data"),
    (["quantize", "{d}/model.keras", "--mode", "int8", "--calib", "{d}/model.keras", "-o", "{d}/x.tflite"],
     "cannot read calibration model.keras as a .npy array"),
    (["inspect", "{d}/calib.npy"], "is not a TFLite model"),
    (["export-c", "{d}/model.keras"], "is not a TFLite model"),
])
def test_errors_are_one_line_exit_2(files, capsys, args, message):
    args = [a.replace("{d}", str(files)) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("homl-edge: error:") and message in err and "\n" not in err
    assert not (files / "x.tflite").exists()


def test_output_is_never_overwritten_without_force(files, capsys):
    d = files
    target = d / "keep.tflite"
    target.write_bytes(b"precious")
    assert cli.main(["quantize", str(d / "model.keras"), "--mode", "float32", "-o", str(target)]) == 2
    assert target.read_bytes() == b"precious"
    assert cli.main(["quantize", str(d / "model.keras"), "--mode", "float32", "-o", str(target), "--force"]) == 0
    assert target.read_bytes()[4:8] == b"TFL3"


def test_lambda_model_is_refused_in_safe_mode(tmp_path, capsys):
    from homl_edge import _keras

    k = _keras.legacy()
    m = k.Sequential([k.Input((4,)), k.layers.Lambda(lambda t: t * 2, name="double"), k.layers.Dense(2)])
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"lambda{suffix}"
        m.save(path)
        before = sha(path)
        assert cli.main(["quantize", str(path), "--mode", "float32", "-o", str(tmp_path / "o.tflite")]) == 2
        err = capsys.readouterr().err
        assert "Lambda" in err and "safe mode" in err, err
        assert sha(path) == before and not (tmp_path / "o.tflite").exists()


def test_real_console_script_exit_status():
    exe = subprocess.run([sys.executable, "-m", "homl_edge.cli", "inspect", "/nonexistent.tflite"],
                         capture_output=True, text=True)
    assert exe.returncode == 2
    assert exe.stderr.strip() == "homl-edge: error: no file at /nonexistent.tflite: check the path"
    bad = subprocess.run([sys.executable, "-m", "homl_edge.cli", "quantize"], capture_output=True, text=True)
    assert bad.returncode == 2 and "the following arguments are required" in bad.stderr
