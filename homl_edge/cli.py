"""``homl-edge``: the command-line face of the same core. ``homl-edge --help``, ``homl-edge COMMAND --help``.

Bad input prints one line (``homl-edge: error: ...``) and exits with status 2. Keras model files are loaded in
safe mode: a Lambda layer's Python code in an untrusted file is refused, never run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from . import commands
from .errors import HomlEdgeError


def _load_npy(path, what):
    import numpy as np

    p = Path(path).expanduser()
    if not p.is_file():
        raise HomlEdgeError(f"no {what} file at {p}")
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:
        raise HomlEdgeError(f"cannot read {what} {p.name} as a .npy array ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):  # np.load opens any zip (.npz, but also .keras) as an archive
        arr.close()
        raise HomlEdgeError(f"cannot read {what} {p.name} as a .npy array (it is a zip archive; save one array "
                            "with numpy.save)")
    return arr


def _load_model(path, unsafe: bool = False):
    from . import _keras

    return _keras.load_model(path, safe_mode=not unsafe)  # the one resolver: .tflite or Keras, safe mode


def _same_or_inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or lies inside the folder ``b`` (paths resolved, symlinks followed)."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def _check_output(path, suffixes, force: bool, inputs=(), what: str = "output") -> Path:
    """Everything that can be known about an output file before any work starts: its suffix, its folder (exists,
    writable), an existing file (only with --force), and that it is none of the command's inputs."""
    import os

    out = Path(path).expanduser()
    if out.suffix not in suffixes:
        raise HomlEdgeError(f"{out.name}: the {what} is written as {' or '.join(suffixes)}; give such a file name")
    for src in inputs:
        if src is not None and Path(src).expanduser().exists() and _same_or_inside(out, Path(src).expanduser()):
            raise HomlEdgeError(f"{out} is the input {src}: write the {what} to another file")
    if out.is_dir():
        raise HomlEdgeError(f"{out} is a folder; give a file name such as {out / ('model' + suffixes[0])}")
    parent = out.parent
    if not parent.is_dir():
        raise HomlEdgeError(f"the folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK):
        raise HomlEdgeError(f"cannot write into {parent}: permission denied")
    if out.exists() and not force:
        raise HomlEdgeError(f"{out} exists already; pass --force to replace it")
    return out


def cmd_quantize(a):
    from . import quantization

    _check_output(a.output, (".tflite",), a.force, [a.model, a.calib])
    model = _load_model(a.model, a.unsafe)
    data = _load_npy(a.calib, "calibration") if a.calib else None
    lite = quantization.quantize(model, a.mode, data=data, precision=a.precision, granularity=a.granularity)
    path = lite.save(a.output, overwrite=a.force)
    print(f"wrote {path}: {lite.size:,} bytes ({lite.gzip_size:,} gzipped), mode {lite.meta['mode']}")


def cmd_inspect(a):
    from .lite import load_lite

    lite = load_lite(a.model)
    if a.json:
        print(json.dumps({"path": str(a.model), "size": lite.size, "gzip_size": lite.gzip_size,
                          "ops": dict(lite.ops), "inputs": _io(lite.input_details),
                          "outputs": _io(lite.output_details), "tensors": lite.tensors()}, default=str, indent=1))
        return
    lite.summary()
    quant = lite.quantization()
    print(f"  tensors: {len(lite.tensors())}, quantized: {len(quant)}")
    for t in quant[:a.max_tensors]:
        scale = t["scale"] if not t["per_channel"] else f"per-channel ({len(t['scale'])} scales)"
        print(f"    {t['name'][:48]:48} {t['dtype']:6} {str(t['shape']):>16} scale={scale} zp={t['zero_point'] if not t['per_channel'] else '...'}")


def _io(details):
    return [{"name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": str(d["dtype"].__name__),
             "quantization": list(d["quantization"])} for d in details]


def cmd_export_tfjs(a):
    from . import export

    out, src = Path(a.output).expanduser(), Path(a.model).expanduser()
    if src.exists() and (_same_or_inside(out, src) or _same_or_inside(src, out)):
        raise HomlEdgeError(f"the output folder {a.output} is, holds or lies inside the model {a.model}: "
                            "export to another folder")
    model = _load_model(a.model, a.unsafe)
    result = export.export_tfjs(model, a.output, quantize=a.quantize, page=a.page, tfjs_url=a.tfjs_url,
                                overwrite=a.force)
    print(f"wrote {result.path}: {len(result.files)} files, weights {result.weights_bytes:,} bytes")


def cmd_export_web(a):
    from . import export

    out, src = Path(a.output).expanduser(), Path(a.model).expanduser()
    if src.exists() and (_same_or_inside(out, src) or _same_or_inside(src, out)):
        raise HomlEdgeError(f"the output folder {a.output} is, holds or lies inside the model {a.model}: "
                            "export to another folder")
    model = a.model if src.suffix == ".tflite" else _load_model(a.model, False)
    r = export.export_web(model, a.output, overwrite=a.force)
    print(f"wrote {r.path}: {len(r.files)} files, model.tflite {r.model_bytes:,} bytes, LiteRT.js "
          f"{r.runtime_bytes:,} bytes")


def cmd_export_c(a):
    from . import export

    _check_output(a.output, (".cc", ".cpp", ".c"), a.force, [a.model], what="C array")
    r = export.export_c_array(a.model, a.output, variable=a.variable, overwrite=a.force)
    print(f"wrote {r['source']} and {r['header']}: {r['flash_bytes']:,} bytes of flash ({r['variable']})")


def cmd_compare(a):
    from . import report

    x, y = _load_npy(a.x, "x"), _load_npy(a.y, "y")
    variants = {name: _load_model(m, a.unsafe) for name, m in zip(_unique_names(a.models), a.models)}
    table = report.compare(variants, x, y, threads=a.threads)
    if a.csv:
        print(table.to_csv(), end="")
    else:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(table.to_frame().to_string(float_format=lambda v: f"{v:.4g}"))


def cmd_autoquantize(a):
    from . import precision

    _check_output(a.output, (".tflite",), a.force, [a.model, a.calib, a.x, a.y])
    model = _load_model(a.model, a.unsafe)
    result = precision.autoquantize(model, _load_npy(a.calib, "calibration"), (_load_npy(a.x, "x"),
                                    _load_npy(a.y, "y")), max_drop=a.max_drop, objective=a.objective,
                                    progress=False)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.tried.drop(columns=["recipe"]).to_frame().to_string(float_format=lambda v: f"{v:.4g}"))
    for note in result.notes:
        print(note)
    path = result.lite.save(a.output, overwrite=a.force)
    print(f"wrote {path}: {result.lite.size:,} bytes, recipe {result.recipe}")


def _unique_names(paths) -> list[str]:
    """The file names of ``paths``, with as many parent folders as it takes to tell them apart."""
    parts = [Path(p).expanduser().resolve().parts for p in paths]
    names = []
    for i, p in enumerate(parts):
        name = str(paths[i])
        for k in range(1, len(p)):
            if not any(j != i and q[-k:] == p[-k:] for j, q in enumerate(parts)):
                name = "/".join(p[-k:])
                break
        names.append(name)
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def cmd_prune(a):
    from . import _keras, sparsity

    # the output is checked before the hours of training, not after
    out = _check_output(a.output, (".keras", ".h5"), a.force, [a.model, a.x, a.y], what="pruned Keras model")
    model = _load_model(a.model, a.unsafe)
    x, y = _load_npy(a.x, "x"), _load_npy(a.y, "y")
    pruned = sparsity.prune(model, (x, y), sparsity=a.sparsity, criterion=a.criterion, structure=a.structure,
                            channels=a.channels, schedule=a.schedule, epochs=a.epochs, layers=a.layers,
                            progress=not a.quiet)
    _keras.save_keras(pruned.model, out, overwrite=a.force)  # a temporary file, then a rename: all or nothing
    print(pruned.to_frame().to_string())
    print(f"wrote {out}")


def cmd_micro(a):
    from . import micro
    from .lite import load_lite

    lite = load_lite(a.model)
    x = _load_npy(a.data, "data")
    y = _load_npy(a.labels, "labels") if a.labels else None
    r = lite.on_micro(x, y, arena_size=a.arena)
    if r.get("compared_with"):  # LiteRT will not run the file: nothing to compare with
        versus = f"not compared ({r['compared_with']})"
    else:
        agree = r["argmax_agreement"]  # None on a one-unit output, where argmax means nothing
        versus = ((f"argmax equal to LiteRT on {agree:.1%}, " if agree is not None else "")
                  + f"bit-identical on {r['bit_identical']:.1%}, max |diff| {r['max_abs_diff']:.3g}")
    print(f"TensorFlow Lite Micro ran {r['n']} inputs: {versus}"
          + (f", accuracy {r['accuracy']:.2%}" if r.accuracy is not None else ""))
    print(f"flash {r['flash_bytes']:,} bytes, smallest tensor arena {r['arena_bytes']:,} bytes")
    print(micro.fits_on(r.flash_bytes, r.arena_bytes).to_frame().to_string(float_format=lambda v: f"{v:.1f}"))


def cmd_explore(a):
    from . import graph

    if a.svg:
        _check_output(a.svg, (".svg",), a.force, [a.model], what="still")
    model = _load_model(a.keras, a.unsafe) if a.keras else None
    data = _load_npy(a.calib, "calibration") if a.calib else None
    # kept after this command ends (the model-explorer line below reads it): not the process folder explore() makes
    folder = a.folder or tempfile.mkdtemp(prefix="homl-edge-explore-")
    try:
        view = graph.explore(a.model, overlay=a.overlay, model=model, data=data, folder=folder)
    except BaseException:
        if not a.folder:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(view.to_frame().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    files = sorted(p.name for p in view.folder.glob("node_data_*.json"))
    print(f"wrote {view.folder}: graphs.json (Model Explorer's graph){', ' + ', '.join(files) if files else ''}")
    if a.svg:
        print(f"wrote {view.save_svg(a.svg)}")
    paths = ",".join(str(view.folder / f) for f in files)
    print(f"open it: model-explorer {a.model}" + (f" --node_data_paths={paths}" if paths else ""))


def cmd_gpu(a):
    from . import gpu

    info = gpu.devices()
    print(info["summary"])
    for g in info["gpus"]:
        print("  " + ", ".join(f"{k}={v}" for k, v in g.items()))


def build_parser() -> argparse.ArgumentParser:
    """Every command of :data:`homl_edge.commands.COMMANDS` that the command line has, run by ``cmd_<name>``."""
    p = argparse.ArgumentParser(prog="homl-edge", description="Make TensorFlow models small and fast for the edge.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__import__('homl_edge').__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in commands.for_face("cli"):
        s = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        for option in cmd.options_for("cli"):
            flags, kwargs = option.argparse()
            s.add_argument(*flags, **kwargs)
        s.set_defaults(func=globals()[f"cmd_{cmd.name.replace('-', '_')}"])
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.func(args)
    except HomlEdgeError as e:
        print(f"homl-edge: error: {commands.command(args.command).error(e, 'cli')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("homl-edge: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
