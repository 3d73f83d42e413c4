"""What every optimization that trains has in common: data checks, compiling like the original, fitting with a
progress bar, and copies that leave the user's model untouched. :mod:`qat`, :mod:`sparsity` and :mod:`clustering`
build on it; each takes a Keras model of either flavour and hands back the same flavour where the layers allow.
"""
from __future__ import annotations

import contextlib
import re

import numpy as np

from . import _keras, _progress, _tf
from ._keras import kernel_of  # noqa: F401  (re-exported: the faces and chapters use training.kernel_of)
from .errors import HomlEdgeError


# ----------------------------------------------------------------------------------------------- Keras flavours
def prepare(model, what: str = "model"):
    """The tf_keras model that TF-MOT works on: ``model`` itself (Keras 2) or its verified translation (Keras 3,
    compiled with the user's loss where the model was compiled); a path or a result that holds a model goes through
    the one resolver first."""
    model = _keras.load_model(model)
    if isinstance(model, _keras.SavedModelSource):
        raise HomlEdgeError(f"{model.name} is an inference-only SavedModel (no Keras layers): training needs the "
                            "Keras model; load its .keras file instead")
    if _keras.flavour(model) is not None:
        _keras.require_functional(model)
    _keras.check_model(model, what)
    legacy = _keras.to_legacy(model)
    loss = getattr(model, "loss", None) if legacy is not model else None
    if loss:   # a compiled Keras 3 model: its translation is fine-tuned on the loss the user chose
        legacy.compile(optimizer=_keras.legacy().optimizers.Adam(), loss=_keras.translate_loss(loss),
                       loss_weights=_keras.compiled_loss_weights(model))
    return legacy


# ----------------------------------------------------------------------------------------------- common parts
def clone(model):
    """A copy of a Sequential or functional model with the same weights (the original stays untouched)."""
    _keras.require_functional(model)
    k = _keras.legacy()
    scope = custom_scope()
    with scope:
        copy = k.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def custom_scope():
    mot = _keras.tfmot()
    return mot.quantization.keras.quantize_scope()


def train_arrays(train):
    """Return (x, y) arrays, or (dataset, None) for a tf.data.Dataset."""
    tf = _tf.tf()
    if isinstance(train, tf.data.Dataset):
        return train, None
    if not (isinstance(train, (tuple, list)) and len(train) == 2):
        raise HomlEdgeError("training data must be a pair (x, y) of arrays or a tf.data.Dataset of (x, y) batches")
    several = ("(a model with several inputs or outputs?): pass a tf.data.Dataset of (x, y) batches, as Keras's "
               "fit takes them")
    try:
        x, y = np.asarray(train[0]), np.asarray(train[1])
    except ValueError:  # a list of arrays of different shapes: numpy's "inhomogeneous shape"
        raise HomlEdgeError(f"x or y is a list of arrays of different shapes {several}") from None
    if len(x) != len(y):
        hint = f" {several}" if isinstance(train[0], (list, tuple)) or isinstance(train[1], (list, tuple)) else ""
        raise HomlEdgeError(f"x has {len(x)} samples but y has {len(y)} labels{hint}")
    if len(x) == 0:
        raise HomlEdgeError("the training data is empty")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise HomlEdgeError("the training inputs contain NaN or infinite values: clean them first")
    return x, y


def check_input_shape(model, x):
    want = tuple(model.inputs[0].shape)
    if x.ndim != len(want) or any(w is not None and w != g for w, g in zip(want[1:], x.shape[1:])):
        shape = "(n, " + ", ".join("?" if d is None else str(d) for d in want[1:]) + ")"
        raise HomlEdgeError(f"training inputs have shape {tuple(x.shape)}; the model expects {shape}")


def loss_and_metrics(model, y):
    """The loss that fits both the model's output and the labels given, whatever the model was compiled with.

    A model compiled with a cross-entropy (or not compiled) gets the one its labels need: sparse for integer
    labels, categorical for one-hot rows, ``from_logits`` read from the output layer (softmax/sigmoid: no). Any
    other loss (MSE, a custom one, one per output) is kept as compiled. Labels that cannot match the output (class
    9 for a 7-unit output, one-hot rows of 10 classes for 7 units), and a model of several outputs that was not
    compiled, are refused in one line.
    """
    k = _keras.legacy()
    loss = getattr(model, "loss", None)
    heads = len(getattr(model, "outputs", None) or [])
    if not loss and heads > 1:
        raise HomlEdgeError(f"the model has {heads} outputs and was not compiled: compile it with a loss for each "
                            "output (model.compile(loss=[...])) before fine-tuning; homl-edge guesses a loss only "
                            "for a single output")
    units = output_units(model)
    if loss and (not _is_crossentropy(loss) or units is None):
        return loss, ["accuracy"]
    kind, classes = label_kind(y)
    logits = not outputs_probabilities(model)
    if units is None or kind is None:
        if loss:
            return loss, ["accuracy"]
        if kind == "regression" or (kind is None and y is not None and np.asarray(y).size):
            return k.losses.MeanSquaredError(), []
        return k.losses.SparseCategoricalCrossentropy(from_logits=logits), ["accuracy"]
    if kind == "regression":
        if loss:
            raise HomlEdgeError(f"the model was compiled with {_loss_label(loss)} (a classifier) but the labels are "
                                "not class numbers (fractions or negatives): pass labels 0..n-1 or one-hot rows")
        return k.losses.MeanSquaredError(), []
    if kind == "onehot":
        if classes != units:
            raise HomlEdgeError(f"the labels are one-hot rows of {classes} classes but the model's output has {units} "
                                f"unit{'s' * (units != 1)}: labels and model must count the same classes")
        return k.losses.CategoricalCrossentropy(from_logits=logits), ["accuracy"]
    # integer labels
    if units == 1:
        if classes is not None and classes > 2:
            raise HomlEdgeError(f"the labels name {classes} classes but the model's output has 1 unit: give it "
                                f"{classes} outputs, or labels 0/1 for a binary classifier")
        return k.losses.BinaryCrossentropy(from_logits=logits), ["accuracy"]
    if classes is not None and classes > units:
        raise HomlEdgeError(f"the labels go up to {classes - 1} ({classes} classes) but the model's output has "
                            f"{units} units: labels and model must count the same classes")
    return k.losses.SparseCategoricalCrossentropy(from_logits=logits), ["accuracy"]


def _loss_label(loss) -> str:
    return loss if isinstance(loss, str) else (getattr(loss, "name", None) or getattr(loss, "__name__", None)
                                               or type(loss).__name__)


def _is_crossentropy(loss) -> bool:
    """A (sparse) categorical cross-entropy, given as a string, a function or a Loss object of either Keras."""
    if isinstance(loss, (dict, list, tuple)):
        return False
    name = re.sub("[^a-z]", "", str(_loss_label(loss)).lower())
    return name in ("categoricalcrossentropy", "sparsecategoricalcrossentropy")


def output_units(model) -> int | None:
    """The width of a single-output model's last axis (None for several outputs or an unknown width)."""
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        return None
    shape = tuple(outputs[0].shape)
    return int(shape[-1]) if len(shape) >= 2 and shape[-1] is not None else None


def outputs_probabilities(model) -> bool:
    """True when the output layer ends in softmax or sigmoid (probabilities), False for logits."""
    names = list(getattr(model, "output_names", None) or [])
    try:
        last = model.get_layer(names[0]) if len(names) == 1 else model.layers[-1]
    except (ValueError, IndexError):
        last = model.layers[-1]
    if type(last).__name__ == "Softmax":
        return True
    act = getattr(last, "activation", None)
    return getattr(act, "__name__", str(act)) in ("softmax", "sigmoid")


def label_kind(y) -> tuple[str | None, int | None]:
    """("sparse", classes seen) for class numbers, ("onehot", classes) for one-hot rows, ("regression", None)
    for fractional targets, (None, None) when nothing is known. ``y`` may be an empty array standing for a
    dataset's label spec."""
    if y is None:
        return None, None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_:
            return (None, None) if y.dtype != np.bool_ else ("sparse", 2)
        if y.size == 0:
            return ("sparse", None) if np.issubdtype(y.dtype, np.integer) else (None, None)
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)) or y.min() < 0:
            return "regression", None
        return "sparse", int(y.max()) + 1
    if y.ndim == 2:
        return "onehot", int(y.shape[1])
    return None, None


def labels_of(train):
    """The labels of ``(x, y)``; for a ``tf.data.Dataset``, an empty array of its label shape and dtype."""
    if isinstance(train, (tuple, list)):
        return np.asarray(train[1])
    spec = getattr(train, "element_spec", None)
    if isinstance(spec, tuple) and len(spec) == 2:
        shape = getattr(spec[1], "shape", None)
        try:
            dims = [int(d) for d in tuple(shape)[1:]]
            return np.zeros((0, *dims), dtype=spec[1].dtype.as_numpy_dtype)
        except (TypeError, ValueError, AttributeError):
            return None
    return None


def _dataset(x, y, batch_size, seed=0):
    tf = _tf.tf()
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch_size)


def progress_callback(total_steps: int, desc: str, progress=True):
    """A Keras callback that drives a progress bar (see :mod:`homl_edge._progress`) step by step."""
    k = _keras.legacy()

    class Progress(k.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = _progress.bar(progress, total_steps, desc)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if logs and batch % 10 == 0:
                self.bar.set_postfix({k_: f"{v:.3f}" for k_, v in logs.items() if k_ in ("loss", "accuracy")})

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def fit(model, original, train, *, epochs, batch_size, learning_rate, callbacks=(), progress=True,
         desc="training", strategy=None):
    """Compile ``model`` like ``original`` and fit it; returns the Keras History."""
    k = _keras.legacy()
    x, y = train_arrays(train)
    if y is not None:
        check_input_shape(original, x)
        data = _dataset(x, y, batch_size)
        steps = int(np.ceil(len(x) / batch_size)) * epochs
    else:
        data = x
        card = int(data.cardinality().numpy())
        steps = card * epochs if card > 0 else None
    check_gradient_kernels(original, batch_size)
    compile_like(model, original, y, learning_rate, strategy)
    cbs = list(callbacks)
    if progress and steps:
        cbs.append(progress_callback(steps, desc, progress))
    with _quiet_tf_logs():
        return model.fit(data, epochs=epochs, verbose=0, callbacks=cbs)


def _strided_pointwise_convs(model) -> list[tuple]:
    """(layer name, H, W, C, filters, stride H, stride W) of every Conv2D with a 1x1 kernel and a stride above 1
    (a ResNet-style shortcut)."""
    found = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ != "Conv2D" or tuple(layer.kernel_size) != (1, 1) or tuple(layer.strides) == (1, 1):
            continue
        try:
            h, w, c = (int(d) for d in tuple(layer.input.shape)[1:])
        except (TypeError, ValueError, AttributeError):  # a free size or channels first: not probed
            continue
        found.append((layer.name, h, w, c, int(layer.filters), *(int(s) for s in layer.strides)))
    return found


_PROBE = """
import sys, tensorflow as tf
b, h, w, c, f, sh, sw = (int(a) for a in sys.argv[1:])
x = tf.random.uniform((b, h, w, c))
dy = tf.ones((b, -(-h // sh), -(-w // sw), f))
tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[1, 1, c, f], out_backprop=dy, strides=[1, sh, sw, 1],
                                padding="SAME")
"""
_PROBED: dict = {}


def check_gradient_kernels(model, batch_size: int) -> None:
    """Refuse in one line, instead of losing the process, to train a model that TensorFlow's oneDNN kernels crash.

    Measured Nov 26 on an AVX-512 Xeon, TensorFlow 2.19 and 2.21: the weight gradient (``Conv2DBackpropFilter``)
    of a 1x1 convolution with stride 2 on 56x56 to 64x64 inputs (the fer emotion model's shortcut on 60x60,
    batch 32) corrupts the heap and kills the process (SIGSEGV or ``free(): invalid size``), while 32x32, 50x50
    and 59x59 are right; with ``TF_ENABLE_ONEDNN_OPTS=0`` every size is right. Which sizes crash depends on the
    CPU, so each such layer's gradient runs once in a child process (a few seconds, only for models that have
    one, remembered per shape) before the model trains here."""
    import subprocess
    import sys

    convs = _strided_pointwise_convs(model)
    if not convs:
        return
    tf = _tf.tf()
    try:
        from tensorflow.python.util import _pywrap_util_port
        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn = True
    if not onednn:
        return
    for name, *shape in convs:
        key = (int(batch_size), *shape)
        if key not in _PROBED:
            env = dict(__import__("os").environ, TF_CPP_MIN_LOG_LEVEL="3")
            try:
                r = subprocess.run([sys.executable, "-c", _PROBE, *map(str, key)], env=env, capture_output=True,
                                   timeout=300)
                _PROBED[key] = r.returncode
            except subprocess.TimeoutExpired:
                _PROBED[key] = None
        code = _PROBED[key]
        if code not in (0, None, 1):  # killed by a signal (negative) or aborted (134, 139): the kernel crashed
            h, w, c, f, sh, sw = shape
            raise HomlEdgeError(
                f"layer {name!r} (1x1 Conv2D, stride {sh}x{sw}, input {h}x{w}x{c}): TensorFlow {tf.__version__}'s "
                f"oneDNN kernel for its weight gradient crashes the process on this CPU (a child died with code "
                f"{code} at batch {batch_size}); set TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow is imported (restart "
                "the kernel) to train this model")


def compile_like(model, original, y=None, learning_rate: float = 1e-3, strategy=None):
    """Compile ``model`` with the original's loss (or one guessed from the labels) and loss weights, Adam and
    accuracy. Per-output losses and weights given by output name go as a list in the original's output order:
    TF-MOT's wrappers rename the output layers (``prune_low_magnitude_<name>``), so names would no longer match."""
    k = _keras.legacy()
    loss, metrics = loss_and_metrics(original, y)
    weights = _keras.compiled_loss_weights(original)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=_in_output_order(loss, original),
                      loss_weights=_in_output_order(weights, original), metrics=metrics)
    return model


def _in_output_order(value, model):
    """A dict keyed by output name as a list in ``model``'s output order (None for an output it does not name)."""
    if not isinstance(value, dict):
        return value
    names = list(getattr(model, "output_names", None) or [])
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise HomlEdgeError(f"the model was compiled with a loss or loss weight for {', '.join(map(repr, unknown))}, "
                            f"which is not one of its outputs ({', '.join(map(repr, names))})")
    return [value.get(n) for n in names]


class _quiet_tf_logs:
    """TF-MOT logs harmless warnings on every step of some schemes (e.g. CQAT's 'Gradients do not exist')."""

    def __enter__(self):
        import logging

        self._loggers = [logging.getLogger("tensorflow"), logging.getLogger()]
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        for lg, level in zip(self._loggers, self._levels):
            lg.setLevel(level)
        return False


def select_layers(layers_regex):
    if layers_regex is None:
        return lambda name: True
    pat = re.compile(layers_regex)
    return lambda name: bool(pat.search(name))


def build_in(strategy, fn):
    if strategy is None:
        return fn()
    with strategy.scope():
        return fn()
