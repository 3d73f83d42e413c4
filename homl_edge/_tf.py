"""The one place that imports TensorFlow (quietly, and only when a function needs it).

Every other module calls :func:`tf` instead of importing TensorFlow at module level, which keeps
``import homl_edge`` fast. Which Keras is which is :mod:`homl_edge._keras`'s business.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


_state: dict = {}

RESTART_HINT = ("restart the kernel and run `%load_ext homl_edge` before importing "
                "tensorflow_model_optimization")


def prepare_environment() -> None:
    """Set the variables TensorFlow reads at import time (no import happens here)."""
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hides the CUDA-plugin noise of a CPU-only machine


@contextlib.contextmanager
def quiet():
    """Silence the converter's C++ chatter (it writes to file descriptors 1 and 2) and its Python warnings."""
    import logging
    import tempfile
    import warnings

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    saved = []
    loggers = [logging.getLogger(n) for n in ("tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # "INFO:tensorflow:Assets written to ..." on every conversion
        lg.setLevel(logging.ERROR)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
        except OSError:  # no real file descriptors (an unusual embedding): just run
            pass
        try:
            yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def tf():
    """Return the ``tensorflow`` module, imported quietly.

    When homl-edge comes first, ``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras`` mean Keras 2 (``tf_keras``), as the
    chapters expect. When TensorFlow (or Keras 3) was imported first, ``tf.keras`` stays Keras 3 and nothing needs
    a restart: homl-edge itself always names its Keras (:mod:`homl_edge._keras`), and translates between the two.
    """
    if "tf" in _state:
        return _state["tf"]
    users_first = "tensorflow" in sys.modules
    prepare_environment()
    with quiet():  # TensorFlow's C++ start-up chatter (CUDA plugins on a CPU machine) goes to fd 2
        import tensorflow
        pin = users_first and os.environ.get("TF_USE_LEGACY_KERAS") not in ("true", "True", "1")
        if pin:
            _pin_keras_loaders(tensorflow)
        try:
            import tf_keras  # noqa: F401
        except ImportError:  # Keras 2 is needed only by TF-MOT and the TF.js converter: said where they are used
            pass
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # for TF-MOT, imported later (it reads this at its import)
    _state["tf"] = tensorflow
    return tensorflow


def _pin_keras_loaders(tensorflow) -> None:
    """``tf.keras``, ``tf.losses``, ``tf.metrics``, ``tf.optimizers`` and ``tf.initializers`` are TensorFlow's
    ``KerasLazyLoader`` modules: each picks its Keras at its first use, from TF_USE_LEGACY_KERAS. When the user
    imported TensorFlow first, make each pick now, as their TensorFlow would (Keras 3), before homl-edge sets the
    variable for TF-MOT: else their later ``tf.keras`` (and every package built on it, such as mtcnn's nets) or
    ``tf.optimizers.Adam`` would silently become Keras 2. The ``tf.compat.v1``/``v2`` twins are left to the variable:
    TF-MOT's pruning registry names the recurrent cells as ``tf.compat.v1/v2.keras.layers.*Cell``, and pinned to
    Keras 3 they no longer match its tf_keras layers (an LSTM's kernels were left unpruned, measured)."""
    try:
        from tensorflow.python.util.lazy_loader import KerasLazyLoader
    except ImportError:  # pragma: no cover - a TensorFlow without lazy Keras modules: nothing to pin
        return
    for value in list(vars(tensorflow).values()):   # vars(), not getattr: nothing is loaded by looking
        if isinstance(value, KerasLazyLoader) and vars(value).get("_tfll_initialized") is False:
            try:
                value._initialize()
            except Exception:  # no Keras at all: left to its first use, where TensorFlow says so
                value._tfll_initialized = False


def keras2_install_hint(what: str = "this") -> str:
    """One line: which tf-keras and TF-MOT to install beside this TensorFlow. pip cannot choose them by itself: the
    newest tf-keras (and TF-MOT 0.8.1, which requires tf-keras) would replace an older TensorFlow with the newest."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        minor = ".".join(version("tensorflow").split(".")[:2])
    except PackageNotFoundError:  # pragma: no cover - tensorflow-cpu and the like
        minor = ".".join(tf().__version__.split(".")[:2])
    return (f"{what} needs Keras 2 and the Model Optimization Toolkit matched to your TensorFlow {minor}: "
            f"pip install 'tf-keras~={minor}.0' 'tensorflow-model-optimization>=0.8,<0.9'")


def tensorflow():
    """TensorFlow, imported quietly: ``tf = he.tensorflow()``."""
    return tf()


def keras_is_legacy() -> bool:
    """True when ``tf.keras`` means Keras 2 in this process (homl-edge was loaded before TensorFlow)."""
    t = tf()
    try:
        import tf_keras
    except ImportError:
        return False
    try:
        return t.keras.Model is tf_keras.Model
    except Exception:  # pragma: no cover - a broken Keras install
        return False


@contextlib.contextmanager
def recording_ops():
    """Record every operation TensorFlow executes eagerly in this block: yields a list that fills with
    ``(op_type, [device of each output])``. TensorFlow's op-callback hook (``tensorflow.python.framework.
    op_callbacks``, private, stable since TF 2.2; what ``tf.debugging.enable_check_numerics`` is built on). Unlike
    ``set_log_device_placement``, which logs when a kernel is first created and so only once per op and device in
    a process, it sees every execution."""
    from tensorflow.python.framework import op_callbacks

    seen: list = []

    def callback(op_type, inputs, attrs, outputs, op_name=None, graph=None):
        seen.append((op_type, [getattr(o, "device", "") or "" for o in (outputs or ())]))
        return None

    op_callbacks.add_op_callback(callback)
    try:
        yield seen
    finally:
        op_callbacks.remove_op_callback(callback)
