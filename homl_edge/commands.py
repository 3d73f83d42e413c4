"""One spec for the commands of both command faces: the IPython magics (``%quantize`` ...) and the command line
(``homl-edge quantize`` ...).

Each :class:`Command` holds its options (flags, help, the core's own constants as choices), which face has it,
what its model argument accepts, and which core parameter each option feeds. ``magics.py`` builds every
``@magic_arguments`` parser and ``cli.py`` every argparse sub-command from :data:`COMMANDS`; a core error names
its parameter as data (``HomlEdgeError(..., param="overwrite")``) and :meth:`Command.spell` turns it into this
face's option (``--force``). Adding a command is one entry here and, in each face that has it, one runner:
``EdgeMagics._<name>`` in ``magics.py``, ``cmd_<name>`` in ``cli.py`` (a dash in the name becomes ``_``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import _keras, clustering, export, graph, precision, qat, quantization, sparsity
from .errors import HomlEdgeError
from .lite import LiteModel

FACES = ("magic", "cli")
_CALL = {"magic": "%", "cli": "homl-edge "}  # how a face writes a whole call: %gpu --limit 2048


@dataclass(frozen=True)
class Option:
    """One argument of a command: argparse's ``flags`` and keywords, plus what the faces need to know about it."""

    flags: tuple
    help: str = ""
    face: str = "both"       # "magic", "cli" or "both"
    param: str | None = None  # the core parameter it feeds (default: its dest); an error naming it names this option
    value: object = True     # a flag (store_true): the value its parameter takes when the flag is given
    file: bool = False       # its value is a file (.npy): an error spells it with the metavar, never the value
    kwargs: dict = field(default_factory=dict)  # type, default, choices, metavar, nargs, required, action

    @property
    def dest(self) -> str:
        return self.flags[-1].lstrip("-").replace("-", "_")

    @property
    def is_flag(self) -> bool:
        return self.kwargs.get("action") == "store_true"

    def argparse(self) -> tuple[tuple, dict]:
        """The positional and keyword arguments of ``add_argument`` (and of IPython's ``@argument``)."""
        return self.flags, dict(self.kwargs, **({"help": self.help} if self.help else {}))

    def spelled(self, value) -> str:
        """This option as a face writes it, for a core parameter given as ``value`` (text, or None)."""
        flag = self.flags[-1]
        metavar = self.kwargs.get("metavar")
        if self.is_flag or not value:
            return flag
        if isinstance(metavar, tuple):
            return f"{flag} {' '.join(metavar)}"
        if self.file or value == "...":
            return f"{flag} {metavar or '...'}"
        return f"{flag} {value.strip(chr(34) + chr(39))}"


def opt(*flags, help: str = "", face: str = "both", param: str | None = None, value=True, file: bool = False,
        **kwargs) -> Option:
    return Option(tuple(flags), help, face, param, value, file, kwargs)


def _choices(values) -> list:
    return [v for v in values if v is not None]


@dataclass(frozen=True)
class Command:
    """A command of one or both faces: its name, one-line help (the CLI's), docstring with an example (the
    magic's), options, and what its model argument accepts (``keras``, ``lite``, ``any``; None: no model)."""

    name: str
    faces: tuple
    help: str = ""
    doc: str = ""
    options: tuple = ()
    accepts: str | None = None
    prose: dict = field(default_factory=dict)  # (face, param) -> words, for a parameter that face has no option for

    def options_for(self, face: str) -> list:
        return [o for o in self.options if o.face in ("both", face)]

    def spell(self, face: str):
        """``spell(name, value, call)`` for :meth:`HomlEdgeError.render`: a core parameter in this face's words."""

        def words(name, value, call):
            if (face, name) in self.prose:
                return self.prose[face, name]
            opts = [o for o in self.options_for(face) if (o.param or o.dest) == name and o.flags[0].startswith("-")]
            if not opts:
                return None  # no option for it here: Python's spelling stays
            flags = [o for o in opts if o.is_flag]
            if flags:
                want = (value or "").strip("'\"")
                text = next((o for o in flags if str(o.value) == want), flags[0]).spelled(value)
            else:
                text = " ".join(o.spelled(value) for o in opts)
            return f"{_CALL[face]}{self.name} {text}" if call else text

        return words

    def error(self, e: HomlEdgeError, face: str) -> str:
        """The one-line message of a core error, its parameters named as this face's options."""
        return e.render(self.spell(face))


def result_file(obj):
    """A result that holds a ``.tflite`` it made (``optimize``'s) as that LiteModel; anything else as it is."""
    return _keras.model_of(obj, lite=True)


def resolve_model(obj, accepts: str = "keras", safe_mode: bool = True, *, lite: bool | None = None):
    """A model argument as a command takes it: a path through the one loader (``.tflite`` -> LiteModel, else a
    Keras model in safe mode), then checked against what the command ``accepts``: ``keras``, ``lite`` or ``any``.
    A result stands for its ``.model``, or (``lite=True``, the default when the command accepts ``lite``) for the
    ``.tflite`` it made when it holds one (``optimize``'s ``.lite``): a command that writes or runs a file must not
    write a fresh float32 conversion of the model instead (:func:`homl_edge._keras.model_of`)."""
    model = _keras.load_model(obj, safe_mode=safe_mode, lite=accepts == "lite" if lite is None else lite)
    if accepts == "lite" and not isinstance(model, LiteModel):
        raise HomlEdgeError(f"this command takes a LiteModel or a .tflite file, got {type(model).__name__}")
    if accepts == "keras" or (accepts == "any" and not isinstance(model, LiteModel)):
        _keras.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------- shared options
def _output(help_magic: str) -> Option:
    return opt("-o", "--output", face="magic", metavar="NAME", help=help_magic)


_UNSAFE = opt("--unsafe", face="cli", action="store_true", param="safe_mode", value=False,
              help="load a Keras model that holds Python code (Lambda layers): only your own files")
_TRAIN = opt("--train", face="magic", nargs=2, metavar=("X", "Y"), required=True, help="training arrays")
_X = opt("--x", face="cli", required=True, metavar="NPY", file=True, param="train", help="training inputs (.npy)")
_Y = opt("--y", face="cli", required=True, metavar="NPY", file=True, param="train", help="training labels (.npy)")
_MODE = opt("--mode", default="int8", help=f"{' | '.join(quantization.MODES)} (default int8)")
_PRECISION = opt("--precision", metavar="REGEX=P,...",
                 help=f"with --mode int4: per-layer {'/'.join(quantization.PRECISIONS)}, e.g. conv=int8")
_GRANULARITY = opt("--granularity", default="channel",
                   help=f"with --mode int4: {' | '.join(quantization.GRANULARITIES)}")
_CRITERION_HELP = "which weights go: smallest |w| (TF-MOT), smallest |w*dL/dw| (taylor), or L1 then magnitude"
_TFJS_QUANTIZE = _choices(export.TFJS_QUANTIZE)
_TFJS_URL = opt("--tfjs-url", help="with --page: local tf.min.js (or a URL you trust) the page loads (default: "
                                   "web/node_modules')")

COMMANDS = (
    Command(
        "quantize", ("magic", "cli"), accepts="any",
        help="convert a model to .tflite with post-training quantization, or re-quantize a float .tflite",
        doc="Convert a Keras model to .tflite with post-training quantization (LiteRT runs the result).\n\n"
            "Example: %quantize model --mode int8 --data x_train[:200] --eval x_test y_test -o lite",
        options=(
            opt("model", face="magic", help="a Keras model (Keras 3 or tf.keras), a LiteModel to re-quantize, or a "
                                            "path"),
            opt("model", face="cli", help=".keras/.h5 file (either Keras, loaded in safe mode), a SavedModel "
                                          "folder, or a float .tflite (modes dynamic, int4, int8 with --calib)"),
            _MODE, _PRECISION, _GRANULARITY,
            opt("--data", face="magic", help="calibration inputs for int8/int8-io/int16x8, e.g. x_train[:200]"),
            opt("--calib", face="cli", metavar="NPY", file=True, param="data",
                help="calibration inputs (.npy) for the int8/int16x8 modes"),
            opt("--eval", face="magic", nargs=2, metavar=("X", "Y"),
                help="measure accuracy and latency on these test arrays"),
            opt("--save", face="magic", metavar="PATH",
                help="also write the .tflite file (refuses to overwrite without --force)"),
            opt("--force", face="magic", action="store_true", param="overwrite",
                help="allow --save to replace an existing file"),
            _output("bind the resulting LiteModel to this name"),
            opt("-o", "--output", face="cli", required=True, metavar="TFLITE", help="output .tflite file"),
            opt("--force", face="cli", action="store_true", param="overwrite",
                help="replace an existing output file"),
            _UNSAFE,
        )),
    Command(
        "inspect", ("cli",), accepts="lite",
        help="ops, tensors, quantization and size of a .tflite file",
        options=(
            opt("model", help=".tflite file"),
            opt("--json", action="store_true", help="machine-readable output"),
            opt("--max-tensors", type=int, default=20, help="quantized tensors to list (default 20)"),
        )),
    Command(
        "qat", ("magic",), accepts="keras",
        doc="Quantization-aware training (fake-quant ops, then fine-tuning); convert the result with --mode int8."
            "\n\nExample: %qat model --train x_train y_train --epochs 2 -o qat_model",
        options=(
            opt("model", help="a Keras model in your namespace (or a .keras/.h5 path)"),
            _TRAIN,
            opt("--epochs", type=int, default=2, help="fine-tuning epochs (default 2)"),
            opt("--preserve", choices=_choices(qat.PRESERVE),
                help="collaborative optimization: keep the zeros (PQAT) and/or the clusters (CQAT) of the model"),
            opt("--unsupported-float", action="store_true", param="unsupported", value="float",
                help="keep layers TF-MOT cannot quantize in float"),
            _output("bind the result (a QuantizeAware: .model, .report) to this name"),
        )),
    Command(
        "prune", ("magic", "cli"), accepts="keras",
        help="pruning (magnitude, taylor, l1, or whole channels) with fine-tuning",
        doc="Pruning with fine-tuning (magnitude, taylor or l1), or channel pruning (--channels); shows the "
            "result.\n\nExample: %prune model --train x_train y_train --sparsity 0.8 --criterion taylor -o pruned",
        options=(
            opt("model", face="magic", help="a Keras model in your namespace (or a .keras/.h5 path)"),
            opt("model", face="cli", help=".keras/.h5 file or a SavedModel folder"),
            _TRAIN, _X, _Y,
            opt("--sparsity", type=float, default=0.8, help="fraction of zeros to reach (default 0.8)"),
            opt("--criterion", choices=list(sparsity.CRITERIA), default="magnitude", help=_CRITERION_HELP),
            opt("--channels", type=float, metavar="RATIO",
                help="remove this fraction of whole filters/units instead (a narrower, faster model), ranked by "
                     f"--criterion {' or '.join(sparsity.CHANNEL_CRITERIA)} (filter L1 norm for magnitude)"),
            opt("--structure", help="M:N structured sparsity such as 2:4"),
            opt("--schedule", choices=list(sparsity.PRUNE_SCHEDULES), default="polynomial",
                help="how the zeros grow during fine-tuning (default polynomial)"),
            opt("--epochs", type=int, default=2, help="fine-tuning epochs (default 2)"),
            opt("--layers", help="regex of layer names to prune (default: all prunable)"),
            _output("bind the result (a Pruned: .model, .report, .sparsity) to this name"),
            opt("-o", "--output", face="cli", required=True, help="output .keras or .h5 file"),
            opt("--force", face="cli", action="store_true", param="overwrite", help="replace an existing output file"),
            opt("--quiet", face="cli", action="store_true", help="no progress bar"),
            _UNSAFE,
        )),
    Command(
        "cluster", ("magic",), accepts="keras",
        doc="Weight clustering: each kernel keeps at most --clusters distinct values.\n\n"
            "Example: %cluster model --train x_train y_train --clusters 16 -o clustered",
        options=(
            opt("model", help="a Keras model in your namespace (or a .keras/.h5 path)"),
            _TRAIN,
            opt("--clusters", type=int, default=16, help="distinct values per kernel (default 16)"),
            opt("--init", choices=list(clustering.CLUSTER_INITS), default="kmeans++",
                help="centroid initialisation (default kmeans++)"),
            opt("--preserve-sparsity", action="store_true", help="keep the zeros of a pruned model"),
            opt("--epochs", type=int, default=1, help="fine-tuning epochs (default 1)"),
            _output("bind the result (a Clustered: .model, .report) to this name"),
        )),
    Command(
        "export", ("magic",), accepts="any",
        doc="Export to the browser (--tfjs DIR [--page], --web DIR), a microcontroller (--c PATH) or a file "
            "(--tflite PATH).\n\nExample: %export model --tfjs web/ --page",
        options=(
            opt("model", help="a Keras model (for --tfjs/--tflite) or a LiteModel (for --c/--tflite)"),
            opt("--tfjs", metavar="DIR", help="write the TF.js Layers format into DIR"),
            opt("--page", action="store_true", help="with --tfjs: add the offline web page (PWA)"),
            opt("--quantize", choices=_TFJS_QUANTIZE, help="with --tfjs: weight storage type"),
            _TFJS_URL,
            opt("--web", metavar="DIR", help="write a page that runs the .tflite with LiteRT.js into DIR (a Keras "
                                             "model is converted to float32)"),
            opt("--c", metavar="PATH", help="write a TFLite Micro C array (model_data.cc + .h)"),
            opt("--tflite", metavar="PATH", help="write the .tflite file (a Keras model is converted to float32)"),
            opt("--force", action="store_true", param="overwrite", help="replace existing output"),
            _output("bind what was written (an export record) to this name"),
        )),
    Command(
        "export-tfjs", ("cli",), accepts="keras",
        help="write the TF.js Layers format (and an offline web page)",
        options=(
            opt("model", help=".keras/.h5 model file or a SavedModel folder"),
            opt("output", help="output folder"),
            opt("--quantize", choices=_TFJS_QUANTIZE, help="weight storage type"),
            opt("--page", action="store_true", help="add the web page (PWA: works offline once visited)"),
            _TFJS_URL,
            opt("--force", action="store_true", param="overwrite", help="replace an earlier export"),
            _UNSAFE,
        )),
    Command(
        "export-web", ("cli",), accepts="any",
        help="write a web page that runs the .tflite itself with LiteRT.js",
        options=(
            opt("model", help=".tflite file (a .keras/.h5 model is converted to float32)"),
            opt("output", help="output folder"),
            opt("--force", action="store_true", param="overwrite", help="replace an earlier export-web folder"),
        )),
    Command(
        "export-c", ("cli",), accepts="lite",
        help="write a .tflite as a TFLite Micro C array (.cc + .h)",
        options=(
            opt("model", help=".tflite file"),
            opt("-o", "--output", default="model_data.cc", help="output .cc file (default model_data.cc)"),
            opt("--variable", default="g_model", help="C name of the array (default g_model)"),
            opt("--force", action="store_true", param="overwrite", help="replace existing output"),
        )),
    Command(
        "compare", ("magic", "cli"),
        help="size, gzip size, accuracy and latency of several models",
        doc="Size, gzip size, accuracy and latency of several variants, with ratios against the first.\n\n"
            "Example: %compare model lite_f32 lite_int8 --eval x_test y_test --plot",
        options=(
            opt("names", face="magic", nargs="+",
                help="models or LiteModels in your namespace; the first is the baseline"),
            opt("models", face="cli", nargs="+", help=".tflite, .keras or .h5 files; the first is the baseline"),
            opt("--eval", face="magic", nargs=2, metavar=("X", "Y"), required=True, help="test arrays"),
            opt("--x", face="cli", required=True, metavar="NPY", file=True, help="test inputs (.npy)"),
            opt("--y", face="cli", required=True, metavar="NPY", file=True, help="test labels (.npy)"),
            opt("--plot", face="magic", action="store_true", help="also draw size against accuracy"),
            opt("--threads", type=int, default=1, help="LiteRT threads for the latency (default 1)"),
            opt("--csv", face="cli", action="store_true", help="CSV output"),
            _UNSAFE,
            _output("bind the table (a DataFrame) to this name"),
        )),
    Command(
        "autoquantize", ("magic", "cli"), accepts="keras",
        help="the smallest (or, --objective latency, the fastest) variant within an accuracy budget",
        doc="Search the smallest per-layer float/int8/int4 mix whose accuracy drop stays within --max-drop (or, "
            "with\n--objective latency, the fastest variant within it, never slower than float32).\n\n"
            "Example: %autoquantize model --data x_train[:200] --eval x_test y_test --max-drop 0.01 -o best",
        options=(
            opt("model", face="magic", help="a tf.keras model in your namespace"),
            opt("model", face="cli", help=".keras/.h5 file or a SavedModel folder"),
            opt("--data", face="magic", required=True, help="calibration inputs, e.g. x_train[:200]"),
            opt("--calib", face="cli", required=True, metavar="NPY", file=True, param="data",
                help="calibration inputs (.npy)"),
            opt("--eval", face="magic", nargs=2, metavar=("X", "Y"), required=True, param="test",
                help="test arrays for the accuracy budget"),
            opt("--x", face="cli", required=True, metavar="NPY", file=True, param="test",
                help="test inputs (.npy) for the accuracy budget"),
            opt("--y", face="cli", required=True, metavar="NPY", file=True, param="test", help="test labels (.npy)"),
            opt("--max-drop", type=float, default=0.01,
                help="accuracy budget, e.g. 0.01 for one point (default)"),
            opt("--objective", choices=list(precision.OBJECTIVES), default="size",
                help="size: the smallest per-layer mix (default); latency: the fastest variant, timed on the test "
                     "inputs, never slower than float32"),
            opt("--plot", face="magic", action="store_true", help="draw every variant tried and the Pareto front"),
            _output("bind the result (.lite, .recipe, .tried) to this name"),
            opt("-o", "--output", face="cli", required=True, metavar="TFLITE", help="output .tflite file"),
            opt("--force", face="cli", action="store_true", param="overwrite", help="replace an existing output file"),
            _UNSAFE,
        )),
    Command(
        "micro", ("magic", "cli"), accepts="lite",
        help="run a .tflite in TensorFlow Lite Micro: agreement, arena, boards",
        doc="Run a .tflite model in TensorFlow Lite Micro: accuracy, agreement with LiteRT, arena and flash "
            "bytes.\n\nExample: %micro lite --eval x_test y_test --boards",
        prose={("magic", "arena_size"): "arena"},
        options=(
            opt("model", face="magic", help="a LiteModel in your namespace (convert with %%quantize --mode "
                                            "int8-io first)"),
            opt("model", face="cli", help=".tflite file (int8-io for microcontrollers)"),
            opt("--eval", face="magic", nargs=2, metavar=("X", "Y"), required=True, help="test arrays"),
            opt("--data", face="cli", required=True, metavar="NPY", file=True, param="x", help="inputs (.npy)"),
            opt("--labels", face="cli", metavar="NPY", file=True, param="y", help="labels (.npy) for the accuracy"),
            opt("--arena", face="cli", type=int, metavar="BYTES", param="arena_size",
                help="tensor arena size (default: searched)"),
            opt("--boards", face="magic", action="store_true",
                help="also show which boards the model and its arena fit on"),
            _output("bind the report (a MicroRun) to this name"),
        )),
    Command(
        "explore", ("magic", "cli"), accepts="lite",
        help="a .tflite as a graph for Model Explorer, with MACs, bits, sparsity or quantization error per node",
        doc="Draw a .tflite in Model Explorer inside the notebook, with homl-edge's results on its nodes (a saved "
            "notebook keeps a still).\n\nExample: %explore lite --overlay error macs --keras model --data "
            "x_train[:200] -o view",
        options=(
            opt("model", face="magic", help="a LiteModel in your namespace (or a .tflite path)"),
            opt("model", face="cli", help=".tflite file"),
            opt("--overlay", nargs="+", choices=list(graph.KINDS),
                help="per-node values: error (SNR per layer, needs the Keras model and inputs), bits (per weight), "
                     "sparsity (zero weights), macs (per sample); the first colours the graph"),
            opt("--keras", face="magic", metavar="MODEL", param="model",
                help="with --overlay error: the float Keras model the file was converted from"),
            opt("--data", face="magic", help="with --overlay error: a few inputs, e.g. x_train[:200]"),
            opt("--keras", face="cli", metavar="KERAS", file=True, param="model",
                help="with --overlay error: the float .keras/.h5 model the file was converted from"),
            opt("--calib", face="cli", metavar="NPY", file=True, param="data",
                help="with --overlay error: a few inputs (.npy)"),
            opt("--folder", face="magic", metavar="DIR",
                help="write the graph and node-data JSON here (default: a temporary folder removed when the kernel "
                     "ends)"),
            opt("--folder", face="cli", metavar="DIR",
                help="write the graph and node-data JSON here (default: a new temporary folder, kept)"),
            opt("--svg", face="cli", metavar="PATH", help="also write the still (ops coloured by the first overlay)"),
            opt("--force", face="cli", action="store_true", param="overwrite", help="replace an existing --svg file"),
            _output("bind the view (an Exploration: .overlays, .to_frame(), .svg) to this name"),
            _UNSAFE,
        )),
    Command(
        "gpu", ("magic", "cli"),
        help="list GPUs (or say that there is none)",
        doc="Without options: GPUs, logical devices and memory. With options: configure them (first cell!).\n\n"
            "Example: %gpu --growth",
        options=(
            opt("--growth", face="magic", action="store_true", param="memory_growth",
                help="allocate GPU memory on demand"),
            opt("--no-growth", face="magic", action="store_true", param="memory_growth", value=False,
                help="turn memory growth off"),
            opt("--limit", face="magic", type=int, metavar="MB", param="memory_limit_mb",
                help="one logical device per GPU with this much memory"),
            opt("--split", face="magic", metavar="MB,MB", help="split GPU 0 into logical devices of these sizes"),
            opt("--visible", face="magic", metavar="IDS",
                help="GPUs this process may see, e.g. 0 or 0,1 (before TensorFlow loads)"),
            opt("--cpu-split", face="magic", type=int, metavar="N", help="split the CPU into N logical devices"),
            _output("bind the result (devices, or what was applied) to this name"),
        )),
)

_BY_NAME = {c.name: c for c in COMMANDS}


def command(name: str) -> Command:
    return _BY_NAME[name]


def for_face(face: str) -> list:
    """The commands a face has, in the spec's order."""
    return [c for c in COMMANDS if face in c.faces]
