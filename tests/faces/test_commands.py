"""One command spec (homl_edge.commands) for both command faces: the magics' and the CLI's parsers are built from
it, choices are the core's constants, a core error names its parameter as data and each face spells it as its
own option, and every magic returns its result or binds it with -o."""
import pickle

import pytest
from IPython.core.error import UsageError

import homl_edge as he
from homl_edge import cli, clustering, commands, export, magics, precision, qat, quantization, sparsity
from homl_edge.errors import GpuConfigError, HomlEdgeError


def _cli_parsers():
    sub = next(a for a in cli.build_parser()._actions if isinstance(getattr(a, "choices", None), dict))
    return sub.choices


def _flags(parser):
    return {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}


def test_both_faces_are_built_from_the_spec():
    parsers = _cli_parsers()
    assert list(parsers) == [c.name for c in commands.for_face("cli")]
    assert magics.MAGICS == tuple(c.name for c in commands.for_face("magic"))
    for cmd in commands.COMMANDS:
        for face in cmd.faces:
            parser = parsers[cmd.name] if face == "cli" else getattr(magics.EdgeMagics, cmd.name).parser
            want = {f for o in cmd.options_for(face) for f in o.flags if f.startswith("-")}
            assert _flags(parser) == want, (face, cmd.name)
            helps = {a.option_strings[-1]: a.help for a in parser._actions if a.option_strings}
            for o in cmd.options_for(face):
                if o.flags[0].startswith("-"):
                    assert helps[o.flags[-1]] == (o.help or None), (face, cmd.name, o.flags)


def test_choices_are_the_cores_constants():
    def choices(face, name, flag):
        cmd = commands.command(name)
        return next(o.kwargs.get("choices") for o in cmd.options_for(face) if flag in o.flags)

    for face in ("magic", "cli"):
        assert choices(face, "prune", "--criterion") == list(sparsity.CRITERIA)
        assert choices(face, "prune", "--schedule") == list(sparsity.PRUNE_SCHEDULES)
        assert choices(face, "autoquantize", "--objective") == list(precision.OBJECTIVES)
    assert choices("magic", "export", "--quantize") == [q for q in export.TFJS_QUANTIZE if q]
    assert choices("cli", "export-tfjs", "--quantize") == [q for q in export.TFJS_QUANTIZE if q]
    assert choices("magic", "cluster", "--init") == list(clustering.CLUSTER_INITS)
    assert choices("magic", "qat", "--preserve") == [p for p in qat.PRESERVE if p]
    mode = next(o for o in commands.command("quantize").options if o.flags == ("--mode",))
    assert all(m in mode.help for m in quantization.MODES)


@pytest.mark.parametrize("command, message, param, magic, cli_words, python", [
    ("quantize", "m.tflite exists already; pass {overwrite=True} to replace it", "overwrite", "pass --force to",
     "pass --force to", "pass overwrite=True to"),
    ("quantize", "mode 'int8' needs calibration data: pass {data=x_train[:200]}", "data",
     "pass --data x_train[:200]", "pass --calib NPY", "pass data=x_train[:200]"),
    ("quantize", "needs {data=...} even for a QAT model", "data", "needs --data ... even", "needs --calib NPY even",
     "needs data=... even"),
    ("prune", "fine-tunes the model: pass {train=(x, y)}", "train", "pass --train X Y", "pass --x NPY --y NPY",
     "pass train=(x, y)"),
    ("prune", "{structure=} and {layers=} go with the magnitude criterion", ("structure", "layers"),
     "--structure and --layers go", "--structure and --layers go", "structure= and layers= go"),
    ("quantize", "pass {safe_mode=False}; {a: 1} and {other=2} are no parameters", "safe_mode",
     "pass safe_mode=False; {a: 1} and {other=2} are", "pass --unsafe; {a: 1} and {other=2} are",
     "pass safe_mode=False; {a: 1} and {other=2} are"),
    ("micro", "did not fit a 1,024-byte arena; pass a larger {arena_size}", "arena_size", "pass a larger arena",
     "pass a larger --arena", "pass a larger arena_size"),
])
def test_core_errors_name_each_faces_option(command, message, param, magic, cli_words, python):
    e = HomlEdgeError(message, param=param)
    cmd = commands.command(command)
    assert python in str(e)
    assert magic in cmd.error(e, "magic")
    assert cli_words in cmd.error(e, "cli")
    again = pickle.loads(pickle.dumps(e))  # the parameter survives a trip through a child process
    assert again.param == e.param and cmd.error(again, "cli") == cmd.error(e, "cli")


def test_a_gpu_setting_is_a_whole_call_in_each_face():
    e = GpuConfigError("restart the kernel and run `{memory_limit_mb=2048}` first", param="memory_limit_mb",
                       call="he.gpu.configure")
    assert str(e) == "restart the kernel and run `he.gpu.configure(memory_limit_mb=2048)` first"
    gpu = commands.command("gpu")
    assert gpu.error(e, "magic") == "restart the kernel and run `%gpu --limit 2048` first"
    assert gpu.error(e, "cli") == str(e)  # the command line has no such option: Python's words stay
    off = GpuConfigError("run `{memory_growth=False}`", param="memory_growth", call="he.gpu.configure")
    assert gpu.error(off, "magic") == "run `%gpu --no-growth`"
    split = GpuConfigError('run `{split="256,256"}`', param="split", call="he.gpu.configure")
    assert gpu.error(split, "magic") == "run `%gpu --split 256,256`" and 'split="256,256"' in str(split)


def test_one_resolver_for_paths(tmp_path, lite_f32):
    path = lite_f32.save(tmp_path / "m.tflite")
    assert isinstance(he._keras.load_model(path), he.LiteModel)
    assert isinstance(he._keras.load_model(str(path)), he.LiteModel)
    assert he._keras.load_model(lite_f32) is lite_f32
    assert isinstance(commands.resolve_model(str(path), "any"), he.LiteModel)
    with pytest.raises(HomlEdgeError, match="must be a Keras model|needs the Keras model"):
        commands.resolve_model(str(path), "keras")
    with pytest.raises(HomlEdgeError, match="no model file"):
        commands.resolve_model(str(tmp_path / "none.keras"), "keras")


def test_every_magic_returns_its_result_or_binds_it(trained, lite_f32, digits):
    from IPython.core.interactiveshell import InteractiveShell

    (x, y), (xt, yt) = digits
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "homl_edge")
    ip.user_ns.update(f32=lite_f32, xt=xt[:40], yt=yt[:40])
    info = ip.run_line_magic("gpu", "")
    assert isinstance(info, he.gpu.Devices) and "summary" in info
    assert ip.run_line_magic("gpu", "-o g") is None and ip.user_ns["g"]["summary"] == info["summary"]
    table = ip.run_line_magic("compare", "f32 --eval xt yt")
    assert list(table.index) == ["f32"]
    assert ip.run_line_magic("compare", "f32 --eval xt yt -o t") is None and list(ip.user_ns["t"].index) == ["f32"]
    with pytest.raises(UsageError, match="-o takes a variable name"):
        ip.run_line_magic("compare", "f32 --eval xt yt -o 1x")
    with pytest.raises(UsageError, match="is not a LiteModel: convert it first"):
        ip.run_line_magic("micro", "xt --eval xt yt")


def test_a_real_core_error_in_each_faces_words(trained, tmp_path, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    trained.save(tmp_path / "m.keras")
    assert cli.main(["quantize", str(tmp_path / "m.keras"), "--mode", "int8", "-o", str(tmp_path / "q.tflite")]) == 2
    err = capsys.readouterr().err
    assert "needs calibration data: pass --calib NPY (a few" in err and "data=" not in err, err
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "homl_edge")
    ip.user_ns["m"] = trained
    with pytest.raises(UsageError, match=r"needs calibration data: pass --data x_train\[:200\] \(a few"):
        ip.run_line_magic("quantize", "m --mode int8")
    with pytest.raises(HomlEdgeError, match=r"pass data=x_train\[:200\] \(a few"):
        he.quantize(trained, "int8")
