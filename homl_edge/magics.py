"""IPython magics: one-liners over the core for your own notebooks. ``%load_ext homl_edge``, then ``%quantize?``.

Every magic resolves names in your namespace, binds its result with ``-o NAME``, shows a table, and turns a
mistake (unknown name, bad flag, wrong shape) into a one-line ``UsageError``. The work is done by the core
functions of the same name, which you can call directly.
"""
from __future__ import annotations

from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import commands
from .errors import HomlEdgeError

MAGICS = tuple(c.name for c in commands.for_face("magic"))


class EdgeMagics(Magics):
    """The magics of :data:`homl_edge.commands.COMMANDS`: each ``%name`` parses its line with the spec's options,
    runs ``_run_<name>`` (which shows what it did and returns its result), then binds the result with ``-o NAME``
    or returns it as the cell's value. Core errors become one-line UsageErrors naming this face's options."""

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
            self.shell.user_ns[name] = value

    def _show(self, obj):
        from IPython.display import display

        display(obj)

    def _show_result(self, args, result):
        """Show ``result`` now when it is bound with -o (unbound, it is the cell's value and shows itself)."""
        if getattr(args, "output", None):
            self._show(result)

    def _model(self, expr, accepts: str = "keras"):
        """A name in the namespace (or a path it holds) as a model of the kind the command ``accepts``."""
        from .lite import LiteModel

        obj = self._get(expr, "model")
        if accepts == "lite":
            obj = commands.result_file(obj)   # optimize()'s result: the .tflite it made
        if accepts == "lite" and not isinstance(obj, (LiteModel, str, Path)):
            raise UsageError(f"{expr} is not a LiteModel: convert it first, e.g. %quantize {expr} "
                             "--mode int8-io --data x_train[:200] -o lite")
        return commands.resolve_model(obj, accepts)

    def _pair(self, exprs, what):
        x, y = (self._get(e, what) for e in exprs)
        return x, y

    # ------------------------------------------------------------------- runners: one per magic of the spec
    def _run_quantize(self, args):
        import pandas as pd

        from . import quantization, report

        lite = quantization.quantize(self._model(args.model, "any"), args.mode,
                                     data=self._get(args.data, "calibration data") if args.data else None,
                                     precision=args.precision, granularity=args.granularity)
        row = {"mode": lite.meta["mode"], "size_bytes": lite.size, "gzip_bytes": lite.gzip_size}
        # (lite.meta["cached"] says whether the conversion came from the cache: not a property of the model)
        if args.eval:
            x, y = self._pair(args.eval, "evaluation data")
            row.update(report.measure(lite, x, y))
        if args.save:
            row["saved_to"] = str(lite.save(args.save, overwrite=args.force))
        self._show(pd.DataFrame([row], index=[lite.name]).T)  # one variant: a vertical table reads best
        return lite

    def _run_qat(self, args):
        from . import qat

        result = qat.quantize_aware(self._model(args.model), self._pair(args.train, "training data"),
                                    epochs=args.epochs, preserve=args.preserve,
                                    unsupported="float" if args.unsupported_float else "error")
        self._show_result(args, result)  # its table: every layer and whether it is quantized
        return result

    def _run_prune(self, args):
        from . import sparsity

        result = sparsity.prune(self._model(args.model), self._pair(args.train, "training data"),
                                sparsity=args.sparsity, criterion=args.criterion, structure=args.structure,
                                channels=args.channels, schedule=args.schedule, epochs=args.epochs,
                                layers=args.layers)
        self._show_result(args, result)  # its table: the channels' widths, or the sparsity per layer
        return result

    def _run_cluster(self, args):
        from . import clustering

        result = clustering.cluster(self._model(args.model), self._pair(args.train, "training data"),
                                    clusters=args.clusters, init=args.init,
                                    preserve_sparsity=args.preserve_sparsity, epochs=args.epochs)
        self._show_result(args, result)  # its table: the distinct values per kernel
        return result

    def _run_export(self, args):
        from . import export, quantization
        from .lite import LiteModel

        targets = [t for t in (args.tfjs, args.c, args.tflite, args.web) if t]
        if len(targets) != 1:
            raise UsageError("give exactly one of --tfjs DIR, --web DIR, --c PATH, --tflite PATH")
        obj = self._get(args.model, "model")
        if args.tfjs:
            result = export.export_tfjs(commands.resolve_model(obj, "keras"), args.tfjs, quantize=args.quantize,
                                        page=args.page, tfjs_url=args.tfjs_url, overwrite=args.force)
        elif args.web:
            result = export.export_web(commands.resolve_model(obj, "any", lite=True), args.web, overwrite=args.force)
        else:   # a file is written: optimize()'s result writes the .tflite it made, not its model converted again
            obj = commands.resolve_model(obj, "any", lite=True)
            if not isinstance(obj, LiteModel):
                if args.c:
                    raise UsageError("--c needs a LiteModel: convert first, e.g. %quantize model --mode int8-io "
                                     "--data x_train[:200] -o lite")
                obj = quantization.quantize(obj, "float32")
            if args.c:
                result = export.export_c_array(obj, args.c, overwrite=args.force)
            else:
                path = obj.save(args.tflite, overwrite=args.force)
                result = {"path": path, "bytes": obj.size}
                print(f"wrote {path} ({obj.size:,} bytes)")
        if not isinstance(result, dict):  # (a written .tflite was printed)
            self._show_result(args, result)
        return result

    def _run_compare(self, args):
        from . import plots, report

        variants = {n: self._get(n, "model") for n in args.names}
        x, y = self._pair(args.eval, "evaluation data")
        table = report.compare(variants, x, y, threads=args.threads)
        self._show_result(args, table)
        if args.plot:
            import matplotlib.pyplot as plt

            fig = plots.plot_tradeoff(table)
            self._show(fig)
            plt.close(fig)
        return table

    def _run_gpu(self, args):
        from . import gpu

        if args.growth and args.no_growth:
            raise UsageError("give --growth or --no-growth, not both")
        growth = True if args.growth else (False if args.no_growth else None)
        if any(v is not None for v in (growth, args.limit, args.split, args.visible, args.cpu_split)):
            result = gpu.configure(memory_growth=growth, memory_limit_mb=args.limit, split=args.split,
                                   visible=args.visible, cpu_split=args.cpu_split)
            self._show_result(args, result)   # what was applied, and the notes (unbound: the cell's value)
            return result
        info = gpu.devices()
        self._show_result(args, info)   # the summary, the GPUs and the logical devices
        return info

    def _run_autoquantize(self, args):
        from . import plots, precision

        result = precision.autoquantize(self._model(args.model), self._get(args.data, "calibration data"),
                                        self._pair(args.eval, "evaluation data"), max_drop=args.max_drop,
                                        objective=args.objective)
        self._show_result(args, result)   # the choice, its notes and every recipe tried (unbound: the cell's value)
        if args.plot:
            import matplotlib.pyplot as plt

            fig = plots.autoquantize(result)
            self._show(fig)
            plt.close(fig)
        return result

    def _run_explore(self, args):
        from . import graph

        view = graph.explore(self._model(args.model, "lite"), overlay=args.overlay,
                             model=self._model(args.keras) if args.keras else None,
                             data=self._get(args.data, "data") if args.data else None, folder=args.folder)
        self._show_result(args, view)
        return view

    def _run_micro(self, args):
        from . import micro

        lite = self._model(args.model, "lite")
        x, y = self._pair(args.eval, "evaluation data")
        run = lite.on_micro(x, y)
        self._show_result(args, run)
        if args.boards:
            self._show(micro.fits_on(run.flash_bytes, run.arena_bytes))
        return run


def _line_magic(cmd: commands.Command):
    """The ``%name`` method of one command: parser and help from the spec, -o, one-line errors, its runner."""
    run = getattr(EdgeMagics, f"_run_{cmd.name.replace('-', '_')}")

    def magic(self, line):
        args = parse_argstring(magic, line)
        name = getattr(args, "output", None)
        if name and not name.isidentifier():
            raise UsageError(f"-o takes a variable name, got {name!r}")
        try:
            result = run(self, args)
        except HomlEdgeError as e:
            raise UsageError(cmd.error(e, "magic")) from None
        if name:
            self._bind(name, result)
            return None
        return result

    magic.__name__ = magic.__qualname__ = cmd.name
    magic.__doc__ = cmd.doc
    for option in reversed(cmd.options_for("magic")):
        flags, kwargs = option.argparse()
        magic = argument(*flags, **kwargs)(magic)
    return line_magic(magic_arguments()(magic))


for _cmd in commands.for_face("magic"):
    setattr(EdgeMagics, _cmd.name, _line_magic(_cmd))
EdgeMagics = magics_class(EdgeMagics)


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
