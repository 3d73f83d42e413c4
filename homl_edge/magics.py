"""IPython magics: one-liners over the core for your own notebooks. ``%load_ext homl_edge``, then ``%quantize?``.

Every magic resolves names in your namespace, binds its result with ``-o NAME``, shows a table, and turns a
mistake (unknown name, bad flag, wrong shape) into a one-line ``UsageError``. The work is done by the core
functions of the same name, which you can call directly.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .errors import HomlEdgeError

MAGICS = ("quantize", "qat", "prune", "cluster", "export", "compare", "gpu", "autoquantize", "micro")


# core errors speak of function parameters; here they become the flags of the magics
_FLAGS = (("pass overwrite=True", "pass --force"), ("overwrite=True", "--force"), ("pass data=", "pass --data "),
          ("data=...", "--data ..."), ("pass train=(x, y)", "pass --train X Y"), ("arena_size", "a larger arena"),
          ("tfjs_url", "--tfjs-url"))


_GPU_FLAGS = {"memory_growth": "--growth", "memory_limit_mb": "--limit", "split": "--split", "visible": "--visible",
              "cpu_split": "--cpu-split"}


def _as_flags(message: str) -> str:
    for a, b in _FLAGS:
        message = message.replace(a, b)

    def gpu_call(m):  # he.gpu.configure(memory_limit_mb=2048) -> %gpu --limit 2048
        flag, value = _GPU_FLAGS.get(m.group(1)), m.group(2).strip('"\'')
        if flag is None:
            return m.group(0)
        return f"%gpu {flag}" + ("" if value == "True" else f" {value}")

    message = re.sub(r"he\.gpu\.configure\((\w+)=([^)]*)\)", gpu_call, message)
    # any other bare parameter name ("structure= and layers= go with ...") becomes its flag
    flags = {a.dest: a.option_strings[-1] for fn in vars(EdgeMagics).values() if hasattr(fn, "parser")
             for a in fn.parser._actions if a.option_strings}
    return re.sub(r"\b([a-z][a-z_]*)=(?=[\s,.;:)]|$)", lambda m: flags.get(m.group(1), m.group(0)), message)


def _usage_errors(fn):
    """Core errors become one-line UsageErrors (no traceback in the notebook), in the magic's own words."""

    @functools.wraps(fn)
    def wrapper(self, line):
        try:
            return fn(self, line)
        except HomlEdgeError as e:
            raise UsageError(_as_flags(str(e))) from None

    return wrapper


@magics_class
class EdgeMagics(Magics):
    # ------------------------------------------------------------------------------------------- helpers
    def _get(self, expr: str, what: str = "value"):
        """Evaluate a name (or a simple expression such as ``x_test[:100]``) in the user's namespace."""
        expr = expr.strip()
        try:
            return self.shell.ev(expr)
        except NameError as e:
            raise UsageError(f"{what} {expr!r} is not defined in this notebook ({e})") from None
        except Exception as e:
            raise UsageError(f"cannot evaluate {what} {expr!r}: {type(e).__name__}: {e}") from None

    def _bind(self, name, value):
        if name:
            if not name.isidentifier():
                raise UsageError(f"-o takes a variable name, got {name!r}")
            self.shell.user_ns[name] = value

    def _show(self, obj):
        from IPython.display import display

        display(obj)

    def _model(self, expr):
        from . import _keras

        m = self._get(expr, "model")
        if isinstance(m, (str, Path)):
            m = _keras.load_keras(m)
        _keras.check_model(m)
        return m

    def _pair(self, exprs, what):
        x, y = (self._get(e, what) for e in exprs)
        return x, y

    # ------------------------------------------------------------------------------------------- magics
    @magic_arguments()
    @argument("model", help="a Keras model (Keras 3 or tf.keras), a LiteModel to re-quantize, or a path")
    @argument("--mode", default="int8",
              help="float32 | dynamic | float16 | int8 | int8-io | int16x8 | int4 (default int8)")
    @argument("--precision", metavar="REGEX=P,...", help="with --mode int4: per-layer float/int8/int4, e.g. conv=int8")
    @argument("--granularity", default="channel", help="with --mode int4: channel | block32 | block64 | block128")
    @argument("--data", help="calibration inputs for int8/int8-io/int16x8, e.g. x_train[:200]")
    @argument("--eval", nargs=2, metavar=("X", "Y"), help="measure accuracy and latency on these test arrays")
    @argument("--save", metavar="PATH", help="also write the .tflite file (refuses to overwrite without --force)")
    @argument("--force", action="store_true", help="allow --save to replace an existing file")
    @argument("-o", "--output", metavar="NAME", help="bind the resulting LiteModel to this name")
    @line_magic
    @_usage_errors
    def quantize(self, line):
        """Convert a Keras model to .tflite with post-training quantization (LiteRT runs the result).

        Example: %quantize model --mode int8 --data x_train[:200] --eval x_test y_test -o lite
        """
        import pandas as pd

        from . import quantization, report
        from .lite import LiteModel

        args = parse_argstring(self.quantize, line)
        obj = self._get(args.model, "model")
        model = obj if isinstance(obj, LiteModel) else self._model(args.model)
        data = self._get(args.data, "calibration data") if args.data else None
        lite = quantization.quantize(model, args.mode, data=data, precision=args.precision,
                                     granularity=args.granularity)
        row = {"mode": lite.meta["mode"], "size_bytes": lite.size, "gzip_bytes": lite.gzip_size}
        # (lite.meta["cached"] says whether the conversion came from the cache: not a property of the model)
        if args.eval:
            x, y = self._pair(args.eval, "evaluation data")
            row.update(report.measure(lite, x, y))
        if args.save:
            row["saved_to"] = str(lite.save(args.save, overwrite=args.force))
        self._show(pd.DataFrame([row], index=[lite.name]).T)  # one variant: a vertical table reads best
        self._bind(args.output, lite)
        return None if args.output else lite

    @magic_arguments()
    @argument("model")
    @argument("--train", nargs=2, metavar=("X", "Y"), required=True, help="training arrays")
    @argument("--epochs", type=int, default=2)
    @argument("--preserve", choices=["sparsity", "clusters", "both"],
              help="collaborative optimization: keep the zeros (PQAT) and/or the clusters (CQAT) of the model")
    @argument("--unsupported-float", action="store_true", help="keep layers TF-MOT cannot quantize in float")
    @argument("-o", "--output", metavar="NAME")
    @line_magic
    @_usage_errors
    def qat(self, line):
        """Quantization-aware training (fake-quant ops, then fine-tuning); convert the result with --mode int8.

        Example: %qat model --train x_train y_train --epochs 2 -o qat_model
        """
        from . import qat

        args = parse_argstring(self.qat, line)
        model = self._model(args.model)
        result = qat.quantize_aware(model, self._pair(args.train, "training data"), epochs=args.epochs,
                                         preserve=args.preserve,
                                         unsupported="float" if args.unsupported_float else "error")
        self._bind(args.output, result)
        return None if args.output else result

    @magic_arguments()
    @argument("model")
    @argument("--train", nargs=2, metavar=("X", "Y"), required=True)
    @argument("--sparsity", type=float, default=0.8, help="fraction of zeros to reach (default 0.8)")
    @argument("--criterion", choices=["magnitude", "taylor", "l1"], default="magnitude",
              help="which weights go: smallest |w| (TF-MOT), smallest |w*dL/dw| (taylor), or L1 then magnitude")
    @argument("--channels", type=float, metavar="RATIO",
              help="remove this fraction of whole filters/units instead (a narrower, faster model), ranked by "
                   "--criterion magnitude (filter L1 norm) or taylor")
    @argument("--structure", help="M:N structured sparsity such as 2:4")
    @argument("--schedule", choices=["polynomial", "constant"], default="polynomial")
    @argument("--epochs", type=int, default=2)
    @argument("--layers", help="regex of layer names to prune (default: all prunable)")
    @argument("-o", "--output", metavar="NAME")
    @line_magic
    @_usage_errors
    def prune(self, line):
        """Pruning with fine-tuning (magnitude, taylor or l1), or channel pruning (--channels); shows the result.

        Example: %prune model --train x_train y_train --sparsity 0.8 --criterion taylor -o pruned
        """
        from . import sparsity

        args = parse_argstring(self.prune, line)
        model = self._model(args.model)
        result = sparsity.prune(model, self._pair(args.train, "training data"), sparsity=args.sparsity,
                                criterion=args.criterion, structure=args.structure, channels=args.channels,
                                schedule=args.schedule, epochs=args.epochs, layers=args.layers)
        report = sparsity.prune_report(result) or {}
        self._show(report["channels"] if "channels" in report else sparsity.sparsity_report(result))
        self._bind(args.output, result)
        return None if args.output else result

    @magic_arguments()
    @argument("model")
    @argument("--train", nargs=2, metavar=("X", "Y"), required=True)
    @argument("--clusters", type=int, default=16)
    @argument("--init", choices=["kmeans++", "linear", "random", "density"], default="kmeans++")
    @argument("--preserve-sparsity", action="store_true")
    @argument("--epochs", type=int, default=1)
    @argument("-o", "--output", metavar="NAME")
    @line_magic
    @_usage_errors
    def cluster(self, line):
        """Weight clustering: each kernel keeps at most --clusters distinct values.

        Example: %cluster model --train x_train y_train --clusters 16 -o clustered
        """
        import pandas as pd

        from . import clustering

        args = parse_argstring(self.cluster, line)
        model = self._model(args.model)
        result = clustering.cluster(model, self._pair(args.train, "training data"), clusters=args.clusters,
                                  init=args.init, preserve_sparsity=args.preserve_sparsity, epochs=args.epochs)
        self._show(pd.Series(clustering.unique_weights(result), name="unique values").to_frame())
        self._bind(args.output, result)
        return None if args.output else result

    @magic_arguments()
    @argument("model", help="a Keras model (for --tfjs/--tflite) or a LiteModel (for --c/--tflite)")
    @argument("--tfjs", metavar="DIR", help="write the TF.js Layers format into DIR")
    @argument("--page", action="store_true", help="with --tfjs: add the offline web page (PWA)")
    @argument("--quantize", choices=["float16", "uint8", "uint16"], help="with --tfjs: weight storage type")
    @argument("--tfjs-url", help="with --page: local tf.min.js (or a URL you trust) the page loads (default: "
              "web/node_modules')")
    @argument("--web", metavar="DIR", help="write a page that runs the .tflite with LiteRT.js into DIR (a Keras "
              "model is converted to float32)")
    @argument("--c", metavar="PATH", help="write a TFLite Micro C array (model_data.cc + .h)")
    @argument("--tflite", metavar="PATH", help="write the .tflite file (a Keras model is converted to float32)")
    @argument("--force", action="store_true", help="replace existing output")
    @argument("-o", "--output", metavar="NAME", help="bind what was written (an export record) to this name")
    @line_magic
    @_usage_errors
    def export(self, line):
        """Export to the browser (--tfjs DIR [--page], --web DIR), a microcontroller (--c PATH) or a file (--tflite PATH).

        Example: %export model --tfjs web/ --page
        """
        from . import export, quantization
        from .lite import LiteModel

        args = parse_argstring(self.export, line)
        targets = [t for t in (args.tfjs, args.c, args.tflite, args.web) if t]
        if len(targets) != 1:
            raise UsageError("give exactly one of --tfjs DIR, --web DIR, --c PATH, --tflite PATH")
        obj = self._get(args.model, "model")
        if args.tfjs:
            result = export.export_tfjs(self._model(args.model), args.tfjs, quantize=args.quantize, page=args.page,
                                        tfjs_url=args.tfjs_url, overwrite=args.force)
        elif args.web:
            web = obj if isinstance(obj, LiteModel) else self._model(args.model)
            result = export.export_web(web, args.web, overwrite=args.force)
        else:
            if not isinstance(obj, LiteModel):
                if args.c:
                    raise UsageError("--c needs a LiteModel: convert first, e.g. %quantize model --mode int8-io "
                                     "--data x_train[:200] -o lite")
                obj = quantization.quantize(self._model(args.model), "float32")
            if args.c:
                result = export.export_c_array(obj, args.c, overwrite=args.force)
            else:
                path = obj.save(args.tflite, overwrite=args.force)
                result = {"path": path, "bytes": obj.size}
                print(f"wrote {path} ({obj.size:,} bytes)")
        if args.output:  # bound: show what was written; unbound: the cell's value shows it
            self._bind(args.output, result)
            if not isinstance(result, dict):
                self._show(result)
            return None
        return None if isinstance(result, dict) else result

    @magic_arguments()
    @argument("names", nargs="+", help="models or LiteModels in your namespace; the first is the baseline")
    @argument("--eval", nargs=2, metavar=("X", "Y"), required=True)
    @argument("--plot", action="store_true", help="also draw size against accuracy")
    @argument("--threads", type=int, default=1)
    @argument("-o", "--output", metavar="NAME", help="bind the table (a DataFrame) to this name")
    @line_magic
    @_usage_errors
    def compare(self, line):
        """Size, gzip size, accuracy and latency of several variants, with ratios against the first.

        Example: %compare model lite_f32 lite_int8 --eval x_test y_test --plot
        """
        from . import plots, report

        args = parse_argstring(self.compare, line)
        variants = {n: self._get(n, "model") for n in args.names}
        x, y = self._pair(args.eval, "evaluation data")
        table = report.compare(variants, x, y, threads=args.threads)
        self._show(table)
        if args.plot:
            import matplotlib.pyplot as plt

            fig = plots.plot_tradeoff(table)
            self._show(fig)
            plt.close(fig)
        self._bind(args.output, table)

    @magic_arguments()
    @argument("--growth", action="store_true", help="allocate GPU memory on demand")
    @argument("--no-growth", action="store_true", help="turn memory growth off")
    @argument("--limit", type=int, metavar="MB", help="one logical device per GPU with this much memory")
    @argument("--split", metavar="MB,MB", help="split GPU 0 into logical devices of these sizes")
    @argument("--visible", metavar="IDS", help="GPUs this process may see, e.g. 0 or 0,1 (before TensorFlow loads)")
    @argument("--cpu-split", type=int, metavar="N", help="split the CPU into N logical devices")
    @argument("-o", "--output", metavar="NAME", help="bind the result (devices, or what was applied) to this name")
    @line_magic
    @_usage_errors
    def gpu(self, line):
        """Without options: GPUs, logical devices and memory. With options: configure them (first cell!).

        Example: %gpu --growth
        """
        import pandas as pd

        from . import gpu

        args = parse_argstring(self.gpu, line)
        if args.growth and args.no_growth:
            raise UsageError("give --growth or --no-growth, not both")
        growth = True if args.growth else (False if args.no_growth else None)
        if any(v is not None for v in (growth, args.limit, args.split, args.visible, args.cpu_split)):
            result = gpu.configure(memory_growth=growth, memory_limit_mb=args.limit, split=args.split,
                                   visible=args.visible, cpu_split=args.cpu_split)
            for a in result["applied"]:
                print("applied:", a)
            for n in result["notes"]:
                print("note:", n)
            self._bind(args.output, result)
            return None
        info = gpu.devices()
        self._bind(args.output, info)
        print(info["summary"])
        if info["gpus"]:
            self._show(pd.DataFrame(info["gpus"]))
        if info["logical"]:
            print("logical devices:", ", ".join(info["logical"]))

    @magic_arguments()
    @argument("model", help="a tf.keras model in your namespace")
    @argument("--data", required=True, help="calibration inputs, e.g. x_train[:200]")
    @argument("--eval", nargs=2, metavar=("X", "Y"), required=True, help="test arrays for the accuracy budget")
    @argument("--max-drop", type=float, default=0.01, help="accuracy budget, e.g. 0.01 for one point (default)")
    @argument("--objective", choices=("size", "latency"), default="size",
              help="size: the smallest mix (default); latency: the fastest variant, timed on the test inputs")
    @argument("--plot", action="store_true", help="draw every variant tried and the Pareto front")
    @argument("-o", "--output", metavar="NAME", help="bind the result (.lite, .recipe, .tried) to this name")
    @line_magic
    @_usage_errors
    def autoquantize(self, line):
        """Search the smallest per-layer float/int8/int4 mix whose accuracy drop stays within --max-drop (or, with
        --objective latency, the fastest variant within it, never slower than float32).

        Example: %autoquantize model --data x_train[:200] --eval x_test y_test --max-drop 0.01 -o best
        """
        from . import plots, precision

        args = parse_argstring(self.autoquantize, line)
        model = self._model(args.model)
        result = precision.autoquantize(model, self._get(args.data, "calibration data"),
                                        self._pair(args.eval, "evaluation data"), max_drop=args.max_drop,
                                        objective=args.objective)
        self._show(result.tried.drop(columns=["recipe"]))
        if args.objective == "latency":
            print("; ".join(result.notes))
        else:
            print(f"chosen: {result.recipe} -> {result.lite.size:,} bytes ({result.size_ratio:.1f}x smaller than "
                  f"float32)" + "".join(f"; {n}" for n in result.notes))
        if args.plot:
            import matplotlib.pyplot as plt

            fig = plots.autoquantize(result)
            self._show(fig)
            plt.close(fig)
        self._bind(args.output, result)
        return None if args.output else result

    @magic_arguments()
    @argument("model", help="a LiteModel in your namespace (convert with %%quantize --mode int8-io first)")
    @argument("--eval", nargs=2, metavar=("X", "Y"), required=True, help="test arrays")
    @argument("--boards", action="store_true", help="also show which boards the model and its arena fit on")
    @argument("-o", "--output", metavar="NAME", help="bind the report (a dict) to this name")
    @line_magic
    @_usage_errors
    def micro(self, line):
        """Run a .tflite model in TensorFlow Lite Micro: accuracy, agreement with LiteRT, arena and flash bytes.

        Example: %micro lite --eval x_test y_test --boards
        """
        from . import micro
        from .lite import LiteModel

        args = parse_argstring(self.micro, line)
        lite = self._get(args.model, "model")
        if not isinstance(lite, LiteModel):
            raise UsageError(f"{args.model} is not a LiteModel: convert it first, e.g. %quantize {args.model} "
                             "--mode int8-io --data x_train[:200] -o lite")
        x, y = self._pair(args.eval, "evaluation data")
        run = lite.on_micro(x, y)
        self._show(run)
        if args.boards:
            self._show(micro.fits_on(run.flash_bytes, run.arena_bytes))
        self._bind(args.output, run)


def load_ipython_extension(ipython):
    """Register the magics. Before TensorFlow is imported, ``tf.keras`` will mean Keras 2 (as in the chapters);
    after, it stays what it is (Keras 3): homl-edge takes models of both, so no restart is needed."""
    from . import _tf

    _tf.prepare_environment()
    ipython.register_magics(EdgeMagics)


def unload_ipython_extension(ipython):
    line_magics = ipython.magics_manager.magics["line"]
    for name in MAGICS:
        fn = line_magics.get(name)
        if fn is not None and getattr(fn, "__self__", None).__class__.__name__ == "EdgeMagics":
            del line_magics[name]
    ipython.magics_manager.registry.pop("EdgeMagics", None)
