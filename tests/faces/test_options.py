"""Every option of every magic and of every CLI command, one table row each, checked for its effect.

`test_every_option_has_a_row` reads the options from the magics' and the CLI's own parsers: an option added
without a row here fails the suite. The rows use a small slice of the digits and one epoch.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from IPython.core.error import UsageError

import homl_edge as he
from homl_edge import cli, magics


@pytest.fixture(scope="module")
def ip(trained, digits):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "homl_edge")
    (x, y), (xt, yt) = digits
    shell.user_ns.update(model=trained, xs=x[:256], ys=y[:256], xt=xt[:120], yt=yt[:120], calib=x[:100])
    shell.user_ns["io"] = he.quantize(trained, "int8-io", data=x[:100])
    shell.user_ns["pruned"] = he.prune(trained, (x[:256], y[:256]), sparsity=0.5, epochs=1, progress=False)
    yield shell
    shell.run_line_magic("unload_ext", "homl_edge")


def _zeros(m, layer="dense"):  # m: a Keras model, or a result that holds one (a magic's -o binds the result)
    return float((he._keras.load_model(m).get_layer(layer).get_weights()[0] == 0).mean())


# (magic, line, check(ns, printed, path)): the line names the option it exercises
MAGIC_ROWS = [
    ("quantize", "model --mode dynamic -o r", lambda ns, out, d: ns["r"].meta["mode"] == "dynamic"),
    ("quantize", "model --mode int8 --data calib -o r", lambda ns, out, d: ns["r"].input_details[0]["dtype"] == np.float32
     and ns["r"].meta["mode"] == "int8"),
    ("quantize", "model --mode int4 --precision classifier=float -o r",
     lambda ns, out, d: ns["r"].meta["precision"]["classifier"] == "float"),
    ("quantize", "model --mode int4 --granularity block32 -o r",
     lambda ns, out, d: ns["r"].content != he.quantize(ns["model"], "int4").content),
    ("quantize", "model --mode float16 --eval xt yt", lambda ns, out, d: "accuracy" in out and "latency" in out),
    ("quantize", "model --mode float32 --save {d}/a.tflite -o r",
     lambda ns, out, d: (d / "a.tflite").read_bytes() == ns["r"].content),
    ("quantize", "model --mode dynamic --save {d}/a.tflite --force -o r",
     lambda ns, out, d: (d / "a.tflite").read_bytes() == ns["r"].content and ns["r"].meta["mode"] == "dynamic"),
    ("qat", "model --train xs ys --epochs 1 -o r", lambda ns, out, d: he._keras.is_qat_model(ns["r"].model)),
    ("qat", "model --train xs ys --epochs 1 --preserve sparsity -o r", lambda ns, out, d: he._keras.is_qat_model(ns["r"].model)),
    ("qat", "model --train xs ys --epochs 1 --unsupported-float -o r", lambda ns, out, d: he._keras.is_qat_model(ns["r"].model)),
    ("prune", "model --train xs ys --sparsity 0.5 --epochs 1 -o r", lambda ns, out, d: abs(_zeros(ns["r"]) - 0.5) < 0.01),
    ("prune", "model --train xs ys --sparsity 0.5 --criterion taylor --epochs 1 -o r",
     lambda ns, out, d: abs(_zeros(ns["r"]) - 0.5) < 0.01 and he.prune_report(ns["r"])["criterion"] == "taylor"),
    ("prune", "model --train xs ys --channels 0.5 --epochs 1 -o r",
     lambda ns, out, d: ns["r"].model.get_layer("conv").get_weights()[0].shape[-1]
     == ns["model"].get_layer("conv").get_weights()[0].shape[-1] // 2),
    ("prune", "model --train xs ys --structure 2:4 --epochs 1 -o r", lambda ns, out, d: he.check_m_by_n(ns["r"])["dense"]),
    ("prune", "model --train xs ys --sparsity 0.5 --schedule constant --epochs 1 -o r",
     lambda ns, out, d: abs(_zeros(ns["r"]) - 0.5) < 0.01),
    ("prune", "model --train xs ys --sparsity 0.5 --layers dense --epochs 1 -o r",
     lambda ns, out, d: _zeros(ns["r"], "conv") == 0 and abs(_zeros(ns["r"]) - 0.5) < 0.01),
    ("cluster", "model --train xs ys --clusters 4 --epochs 1 -o r",
     lambda ns, out, d: he.unique_weights(ns["r"])["dense"] == 4),
    ("cluster", "model --train xs ys --clusters 4 --init linear --epochs 1 -o r",
     lambda ns, out, d: he.unique_weights(ns["r"])["dense"] == 4),
    ("cluster", "pruned --train xs ys --clusters 8 --preserve-sparsity --epochs 1 -o r",
     lambda ns, out, d: _zeros(ns["r"]) >= _zeros(ns["pruned"]) - 1e-6 and he.unique_weights(ns["r"])["dense"] <= 9),
    ("export", "model --tfjs {d}/web --quantize uint8 --page --tfjs-url https://cdn.example.org/tf.min.js -o r",
     lambda ns, out, d: "https://cdn.example.org/tf.min.js" in (d / "web/index.html").read_text()
     and json.loads((d / "web/model.json").read_text())["weightsManifest"][0]["weights"][0]["dtype"] == "float32"
     and json.loads((d / "web/model.json").read_text())["weightsManifest"][0]["weights"][0]["quantization"]["dtype"]
     == "uint8"),
    ("export", "model --tfjs {d}/web --force -o r", lambda ns, out, d: not (d / "web/index.html").exists()),
    ("export", "model --web {d}/lweb -o r",
     lambda ns, out, d: (d / "lweb/model.tflite").is_file() and ns["r"].batch_fixed and (d / "lweb/litert").is_dir()),
    ("export", "io --c {d}/m.cc -o r", lambda ns, out, d: (d / "m.h").is_file() and ns["r"].flash_bytes == ns["io"].size),
    ("export", "io --tflite {d}/m.tflite", lambda ns, out, d: (d / "m.tflite").read_bytes() == ns["io"].content),
    ("compare", "model io --eval xt yt --threads 2 --plot -o r",
     lambda ns, out, d: list(ns["r"].index) == ["model", "io"] and ns["r"].loc["io", "size_ratio"] > 1),
    ("micro", "io --eval xt yt --boards -o r",
     lambda ns, out, d: ns["r"]["argmax_agreement"] >= 0.99 and "Arduino Uno" in out),
    ("autoquantize", "model --data calib --eval xt yt --max-drop 0.02 --plot -o r",
     lambda ns, out, d: ns["r"].lite is not None and ns["r"].recipe is not None),
    ("autoquantize", "model --data calib --eval xt yt --objective latency -o r",
     lambda ns, out, d: ns["r"].objective == "latency" and ns["r"].tried.chosen.sum() == 1 and "float32" in ns["r"].tried.index
     and "AutoQuantResult(" in out),
    ("explore", "io --overlay error bits --keras model --data calib --folder {d}/view -o r",
     lambda ns, out, d: list(ns["r"].overlays) == ["error", "bits"] and set(ns["r"].overlays["bits"].values()) == {8.0}
     and min(ns["r"].overlays["error"].values()) > 20 and (d / "view/node_data_1.json").is_file()),
    ("gpu", "-o r", lambda ns, out, d: "no GPU" in out and ns["r"]["gpus"] == []),
    ("gpu", "--growth -o r", lambda ns, out, d: "memory_growth has no effect" in out and ns["r"] is not None),
    ("gpu", "--no-growth -o r", lambda ns, out, d: "no GPU" in str(ns["r"])),
    ("gpu", "--limit 512 -o r", lambda ns, out, d: "memory_limit_mb has no effect" in str(ns["r"])),
    ("gpu", "--split 256,256 -o r", lambda ns, out, d: "no GPU" in str(ns["r"])),
]
MAGIC_ERRORS = [  # options whose check is the one-line refusal, in the face's own words
    ("gpu", "--visible 0", "already loaded in this kernel: restart the kernel and run `%gpu --visible 0`"),
    ("gpu", "--cpu-split 3", "%gpu --cpu-split 3"),
]


@pytest.mark.slow
@pytest.mark.parametrize("magic, line, check", MAGIC_ROWS, ids=[f"%{m} {l}" for m, l, _ in MAGIC_ROWS])
def test_magic_option(ip, magic, line, check, tmp_path_factory, capsys):
    d = tmp_path_factory.getbasetemp() / "options"
    d.mkdir(exist_ok=True)
    if "--force" in line and magic == "export":
        (d / "web").mkdir(exist_ok=True)
    ip.run_line_magic(magic, line.format(d=d))
    out = capsys.readouterr().out
    assert check(ip.user_ns, out, d), (magic, line, out[-500:])


@pytest.mark.parametrize("magic, line, message", MAGIC_ERRORS)
def test_magic_option_refusals(ip, magic, line, message):
    import tensorflow as tf

    tf.constant(1.0)  # the runtime is initialised, as in any notebook that has run a cell of TensorFlow
    with pytest.raises(UsageError, match=message) as e:
        ip.run_line_magic(magic, line)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def files(trained, digits, tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-options")
    (x, y), (xt, yt) = digits
    trained.save(d / "model.keras")
    np.save(d / "calib.npy", x[:100])
    np.save(d / "xs.npy", x[:256])
    np.save(d / "ys.npy", y[:256])
    np.save(d / "xt.npy", xt[:60])
    np.save(d / "yt.npy", yt[:60])
    he.quantize(trained, "int8-io", data=x[:100]).save(d / "io.tflite", overwrite=True)
    k = he._keras.legacy()  # a model with Python code in it (a Lambda): only --unsafe loads it
    lam = k.Sequential([k.Input((8, 8, 1)), k.layers.Lambda(lambda t: t * 1.0, name="scale"),
                        k.layers.Conv2D(4, 3, name="conv"), k.layers.Flatten(), k.layers.Dense(10, name="dense")])
    lam.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    lam.save(d / "lambda.h5")
    return d


CLI_ROWS = [
    ("autoquantize", "{d}/model.keras --calib {d}/calib.npy --x {d}/xt.npy --y {d}/yt.npy --max-drop 0.02 "
     "--objective latency -o {d}/fast.tflite",
     lambda d, out: "float32" in out and he.load_lite(d / "fast.tflite").size > 0 and "wrote" in out),
    ("autoquantize", "{d}/lambda.h5 --calib {d}/calib.npy --x {d}/xt.npy --y {d}/yt.npy --unsafe "
     "-o {d}/fast.tflite --force",
     lambda d, out: "all int4" in out and "wrote" in out),
    ("quantize", "{d}/model.keras --mode int8 --calib {d}/calib.npy -o {d}/q.tflite",
     lambda d, out: he.load_lite(d / "q.tflite").meta.get("mode", "int8") and "mode int8" in out),
    ("quantize", "{d}/model.keras --mode int4 --precision classifier=float --granularity block32 -o {d}/q.tflite --force",
     lambda d, out: "mode int4" in out or "mode mixed" in out),
    ("quantize", "{d}/lambda.h5 --mode float32 --unsafe -o {d}/lambda.tflite",
     lambda d, out: he.load_lite(d / "lambda.tflite").ops["CONV_2D"] == 1),
    ("inspect", "{d}/io.tflite --max-tensors 2",
     lambda d, out: len(out.split("quantized:")[1].strip().splitlines()[1:]) == 2),
    ("inspect", "{d}/io.tflite --json", lambda d, out: json.loads(out)["inputs"][0]["dtype"] == "int8"),
    ("export-tfjs", "{d}/model.keras {d}/web --quantize float16 --page --tfjs-url https://cdn.example.org/tf.min.js",
     lambda d, out: "https://cdn.example.org/tf.min.js" in (d / "web/index.html").read_text()
     and json.loads((d / "web/model.json").read_text())["weightsManifest"][0]["weights"][0]["quantization"]["dtype"]
     == "float16"),
    ("export-tfjs", "{d}/model.keras {d}/web --force", lambda d, out: not (d / "web/index.html").exists()),
    ("export-tfjs", "{d}/lambda.h5 {d}/lweb --unsafe",
     lambda d, out: "Lambda" in (d / "lweb/model.json").read_text()),
    ("export-web", "{d}/model.keras {d}/lw", lambda d, out: "LiteRT.js" in out and (d / "lw/model.tflite").is_file()),
    ("export-web", "{d}/model.keras {d}/lw --force", lambda d, out: "model.tflite" in out),
    ("export-c", "{d}/io.tflite -o {d}/m.cc --variable g_digits",
     lambda d, out: "g_digits" in (d / "m.h").read_text() and "(g_digits)" in out),
    ("export-c", "{d}/io.tflite -o {d}/m.cc --variable g_other --force", lambda d, out: "g_other" in (d / "m.cc").read_text()),
    ("compare", "{d}/model.keras {d}/io.tflite --x {d}/xt.npy --y {d}/yt.npy --threads 2 --csv",
     lambda d, out: out.splitlines()[0].startswith("variant,") and len(out.splitlines()) == 3),
    ("compare", "{d}/lambda.h5 {d}/io.tflite --x {d}/xt.npy --y {d}/yt.npy --unsafe --csv",
     lambda d, out: [l.split(",")[0] for l in out.splitlines()[1:]] == ["lambda.h5", "io.tflite"]),
    ("prune", "{d}/model.keras --x {d}/xs.npy --y {d}/ys.npy --sparsity 0.5 --criterion l1 --epochs 1 --quiet "
              "-o {d}/l1.keras",
     lambda d, out: abs(_zeros(he._keras.load_keras(d / "l1.keras")) - 0.5) < 0.01),
    ("prune", "{d}/model.keras --x {d}/xs.npy --y {d}/ys.npy --sparsity 0.5 --schedule constant "
              "--layers dense --epochs 1 --quiet -o {d}/p.keras",
     lambda d, out: abs(_zeros(he._keras.load_keras(d / "p.keras")) - 0.5) < 0.01
     and _zeros(he._keras.load_keras(d / "p.keras"), "conv") == 0),
    ("prune", "{d}/model.keras --x {d}/xs.npy --y {d}/ys.npy --structure 2:4 --epochs 1 --quiet -o {d}/p.keras --force",
     lambda d, out: he.check_m_by_n(he._keras.load_keras(d / "p.keras"))["dense"]),
    ("prune", "{d}/lambda.h5 --x {d}/xs.npy --y {d}/ys.npy --sparsity 0.5 --epochs 1 --quiet --unsafe -o {d}/lp.h5",
     lambda d, out: abs(_zeros(he._keras.load_keras(d / "lp.h5", safe_mode=False)) - 0.5) < 0.01),
    ("prune", "{d}/model.keras --x {d}/xs.npy --y {d}/ys.npy --channels 0.5 --epochs 1 --quiet -o {d}/c.keras",
     lambda d, out: "before" in out and "after" in out),
    ("micro", "{d}/io.tflite --data {d}/xt.npy --labels {d}/yt.npy --arena 65536",
     lambda d, out: "accuracy" in out and "smallest tensor arena" in out),
    ("explore", "{d}/io.tflite --overlay error macs --keras {d}/model.keras --calib {d}/calib.npy --folder {d}/view "
                "--svg {d}/io.svg",
     lambda d, out: "node_data_1.json" in out and "model-explorer" in out and (d / "view/graphs.json").is_file()
     and "error (SNR dB)" in (d / "io.svg").read_text()),
    ("explore", "{d}/io.tflite --overlay bits --keras {d}/lambda.h5 --unsafe --svg {d}/io.svg --force",
     lambda d, out: "bits" in (d / "io.svg").read_text() and "bits" in out and _kept_explore_folder(out)),
    ("gpu", "", lambda d, out: "no GPU" in out),
]


def _kept_explore_folder(out: str) -> bool:
    """The CLI's default folder (its model-explorer line reads the files in it) outlives the command: a plain
    temporary folder, not one of the process folders removed at exit (then removed here)."""
    import shutil

    from homl_edge import _files

    folder = Path(out.split("wrote ", 1)[1].split(":", 1)[0])
    kept = (folder / "node_data_0.json").is_file() and str(folder) not in _files._made \
        and not Path(f"{folder}.lock").exists() and f"--node_data_paths={folder}/node_data_0.json" in out
    shutil.rmtree(folder)
    return kept


@pytest.mark.slow
@pytest.mark.parametrize("command, args, check", CLI_ROWS, ids=[f"{c} {a}" for c, a, _ in CLI_ROWS])
def test_cli_option(files, command, args, check, capsys):
    argv = [command, *args.format(d=files).split()]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert check(files, capsys.readouterr().out)


def test_cli_errors_name_options_not_parameters(files, capsys):
    argv = ["prune", str(files / "model.keras"), "--x", str(files / "xs.npy"), "--y", str(files / "ys.npy"),
            "--criterion", "l1", "--layers", "dense", "-o", str(files / "never.keras")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--structure and --layers go with the magnitude criterion" in err and "layers=" not in err, err
    assert not (files / "never.keras").exists()


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"homl-edge {he.__version__}"


def test_every_option_has_a_row():
    import inspect

    missing = []
    for name, fn in inspect.getmembers(magics.EdgeMagics):
        parser = getattr(fn, "parser", None)
        if parser is None:
            continue
        lines = [line.split() for m, line, _ in MAGIC_ROWS if m == name] + \
                [line.split() for m, line, _ in MAGIC_ERRORS if m == name]
        assert lines, f"no row for %{name}"
        for action in parser._actions:
            if action.option_strings and not any(set(action.option_strings) & set(t) for t in lines):
                missing.append(f"%{name} {action.option_strings[0]}")
    sub = next(a for a in cli.build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    for command, parser in sub.choices.items():
        lines = [args.split() for c, args, _ in CLI_ROWS if c == command]
        assert lines, f"no row for homl-edge {command}"
        for action in parser._actions:
            if action.option_strings and action.dest != "help" and \
                    not any(set(action.option_strings) & set(t) for t in lines):
                missing.append(f"homl-edge {command} {action.option_strings[0]}")
    assert not missing, missing
