"""The one place that imports TensorFlow.

The Model Optimization Toolkit and the TF.js converter only work with Keras 2 (the ``tf_keras`` package), so
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow decides which Keras ``tf.keras`` is. Every other module
calls :func:`tf` / :func:`keras` instead of importing TensorFlow at module level, which keeps ``import homl_edge``
fast.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from .errors import HomlEdgeError, first_line

_state: dict = {}

RESTART_HINT = ("restart the kernel and run `%load_ext homl_edge` (or `import homl_edge; homl_edge._tf.tf()`) "
                "before importing TensorFlow or Keras")


class KerasVersionError(HomlEdgeError):
    """TensorFlow was already set up with Keras 3 in this process."""


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
    """Return the ``tensorflow`` module, set up for Keras 2 (``tf.keras`` is ``tf_keras``)."""
    if "tf" in _state:
        return _state["tf"]
    prepare_environment()
    with quiet():  # TensorFlow's C++ start-up chatter (CUDA plugins on a CPU machine) goes to fd 2
        import tensorflow
        import tf_keras

    try:
        legacy = tensorflow.keras.Model is tf_keras.Model
    except Exception:  # pragma: no cover - a broken Keras install
        legacy = False
    if not legacy:
        raise KerasVersionError(
            "TensorFlow was already imported with Keras 3 in this process, but homl-edge needs Keras 2 (tf_keras): "
            + RESTART_HINT)
    _state["tf"] = tensorflow
    return tensorflow


def tensorflow():
    """TensorFlow, imported quietly and set up for Keras 2: ``tf = he.tensorflow()``."""
    return tf()


def keras():
    """Return Keras 2 (the ``tf_keras`` package), the Keras that ``tf.keras`` means under homl-edge."""
    tf()
    import tf_keras

    return tf_keras


def tfmot():
    tf()
    import tensorflow_model_optimization

    return tensorflow_model_optimization


def check_model(model, what: str = "model"):
    """Raise a clear error unless ``model`` is a Keras 2 (tf.keras) model with known input shapes."""
    k = keras()
    if isinstance(model, k.Model):
        if not model.built or not getattr(model, "inputs", None):
            raise HomlEdgeError(f"the {what} has no known input shape: build it first "
                                "(give the first layer `input_shape=...` or call the model once on a batch)")
        return model
    mod = type(model).__module__
    if mod.startswith("keras"):
        raise HomlEdgeError(
            f"the {what} is a Keras 3 model ({type(model).__name__} from `keras`); homl-edge needs tf.keras "
            "(Keras 2): build it with `tf.keras` after `import homl_edge`, or load the file with he.load_keras(path)")
    raise HomlEdgeError(f"the {what} must be a tf.keras model, got {type(model).__name__}")


def is_functional(model) -> bool:
    """True for Sequential and functional models; False for subclassed ones (which tfmot cannot wrap)."""
    return bool(getattr(model, "_is_graph_network", False)) or isinstance(model, keras().Sequential)


def load_keras(path, safe_mode: bool = True):
    """Load a ``.keras`` or ``.h5`` model file with Keras 2, in safe mode by default.

    Safe mode refuses to deserialise Python code (a ``Lambda`` layer's bytecode), so that an untrusted model file
    cannot run arbitrary code. Pass ``safe_mode=False`` only for files you wrote yourself.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise HomlEdgeError(f"no model file at {p}: check the path")
    if p.suffix not in (".keras", ".h5", ".hdf5") and not p.is_dir():
        raise HomlEdgeError(f"{p.name}: expected a .keras or .h5 model file or a SavedModel folder")
    k = keras()
    try:
        if p.suffix in (".h5", ".hdf5"):
            _refuse_h5_lambda(p, safe_mode)
            return k.models.load_model(p, compile=True)
        return k.models.load_model(p, safe_mode=safe_mode, compile=True)
    except HomlEdgeError:
        raise
    except ValueError as e:
        msg = first_line(e)
        if "safe_mode" in str(e) or "Lambda" in str(e) or "unsafe" in str(e).lower():
            raise HomlEdgeError(f"{p.name} contains Python code (a Lambda layer) and safe mode refuses to load it; "
                                "pass safe_mode=False only if you trust the file") from None
        raise HomlEdgeError(f"cannot load {p.name}: {msg}") from None
    except Exception as e:  # h5py/OSError/... on a corrupt file
        first = first_line(e)
        raise HomlEdgeError(f"cannot load {p.name} ({type(e).__name__}: {first[:200]})") from None


def _refuse_h5_lambda(path: Path, safe_mode: bool) -> None:
    """tf_keras loads a Lambda layer from HDF5 without a safe-mode check: check the stored config ourselves."""
    if not safe_mode:
        return
    import json

    import h5py

    try:
        with h5py.File(path, "r") as f:
            cfg = f.attrs.get("model_config")
    except OSError as e:
        raise HomlEdgeError(f"cannot load {path.name}: not a readable HDF5 file ({e})") from None
    if cfg is None:
        return
    if isinstance(cfg, bytes):
        cfg = cfg.decode()
    if '"Lambda"' in cfg or "'Lambda'" in cfg:
        try:
            names = [l["config"]["name"] for l in json.loads(cfg)["config"]["layers"] if l["class_name"] == "Lambda"]
        except Exception:
            names = ["?"]
        raise HomlEdgeError(f"{path.name} contains Python code in Lambda layer(s) {', '.join(names)} and safe mode "
                            "refuses to load it; pass safe_mode=False only if you trust the file")
