"""Calibration data: any accepted form (an array, a ``tf.data.Dataset``, a generator of batches or ``(x, y)``
pairs) turned into one array of the model's input dtype (float32 for most models), checked against its input.
``homl_edge.quantization`` exports every name.
"""
from __future__ import annotations

import numpy as np

from . import _keras, _tf
from ._tf import quiet
from .errors import HomlEdgeError


MAX_CALIBRATION = 1000


def input_signature(model) -> tuple:
    return _inputs(model)[0][0]


def input_dtype(model) -> np.dtype:
    """The numpy dtype of the model's (first) input: float32 for most models, uint8 or int32 for some that take
    raw pixels or token ids (anything numpy cannot name counts as float32)."""
    return _inputs(model)[0][1]


def _inputs(model) -> list[tuple[tuple, np.dtype]]:
    """(shape, numpy dtype) of each input: a Keras model's, or a SavedModel's serving signature's (the folder is
    loaded once per source: the calibration checks and the converter's representative data both ask)."""
    if isinstance(model, _keras.SavedModelSource):
        if model._input_specs is None:
            model._input_specs = _saved_model_inputs(model)
        specs = model._input_specs
    else:
        specs = model.inputs
    return [(tuple(None if d is None else int(d) for d in s.shape), _numpy_dtype(s.dtype)) for s in specs]


def _numpy_dtype(dt) -> np.dtype:
    try:
        return np.dtype(getattr(dt, "as_numpy_dtype", dt))
    except TypeError:
        return np.dtype(np.float32)


def _saved_model_inputs(src) -> list:
    """The ``TensorSpec`` of each input of a SavedModel's serving signature."""
    tf = _tf.tf()
    with quiet():
        loaded = tf.saved_model.load(str(src.path))
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise HomlEdgeError(f"{src.name} has no serving_default signature to convert")
    return list(sig.structured_input_signature[1].values())


def calibration_array(model, data, max_samples: int = MAX_CALIBRATION) -> np.ndarray:
    """Turn any accepted form of calibration data into one array of the model's input dtype (float32 for most;
    uint8 or int32 for a model that takes raw pixels or ids), checked against the model's input."""
    inputs = _inputs(model)
    if len(inputs) != 1:
        raise HomlEdgeError(f"the model has {len(inputs)} inputs; homl-edge calibrates single-input models")
    sig, dtype = inputs[0]
    want = f"{dtype.name} array of shape (n, {', '.join('?' if d is None else str(d) for d in sig[1:])})"
    x = _collect(data, max_samples, want)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
                                 or x.dtype == np.bool_):
        raise HomlEdgeError(f"calibration data has dtype {x.dtype}; the model's input is a {want}")
    if x.ndim == len(sig) - 1:
        x = x[None]
    if x.ndim != len(sig) or any(w is not None and w != g for w, g in zip(sig[1:], x.shape[1:])):
        raise HomlEdgeError(f"calibration data has shape {tuple(x.shape)}; the model's input is a {want}")
    if len(x) == 0:
        raise HomlEdgeError(f"calibration data is empty; the model's input is a {want}")
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return _as_integers(x, dtype, want)[:max_samples]
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        n = int(bad.reshape(len(x), -1).any(axis=1).sum())
        raise HomlEdgeError(f"calibration data has NaN or infinite values in {n} of {len(x)} samples: "
                            f"clean or drop them (they would break the int8 ranges); the model's input is a {want}")
    return x[:max_samples]


def _as_integers(x: np.ndarray, dtype: np.dtype, want: str) -> np.ndarray:
    """Calibration data for an integer input, refused in one line where casting would change a value (a fraction,
    NaN, or a number outside the type's range would be wrapped or cut without a word)."""
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        exact = True
    else:
        exact = bool(np.isfinite(x).all()) and bool(np.array_equal(x, np.round(x)))
    if not exact:
        raise HomlEdgeError(f"calibration data has fractional, NaN or infinite values but the model's input is a "
                            f"{want}: give the values the model takes (whole numbers, e.g. raw pixels 0..255)")
    info = np.iinfo(dtype) if dtype != np.bool_ else None
    lo, hi = (0, 1) if info is None else (info.min, info.max)
    if x.size and (x.min() < lo or x.max() > hi):
        raise HomlEdgeError(f"calibration data runs from {x.min():g} to {x.max():g}, outside {dtype.name}'s "
                            f"{lo}..{hi}; the model's input is a {want}")
    return x.astype(dtype)


def _collect(data, max_samples, want) -> np.ndarray:
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") and not hasattr(data, "element_spec"):
        return np.asarray(data)
    if isinstance(data, (list, tuple)) and data and all(np.isscalar(v) for v in np.ravel(data[0])) and \
            not isinstance(data, tuple):
        return np.asarray(data)
    if callable(data) and not hasattr(data, "__iter__"):
        data = data()
    tf = _tf.tf()
    if isinstance(data, tf.data.Dataset):
        data = data.as_numpy_iterator()
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise HomlEdgeError(f"calibration data must be an array, a tf.data.Dataset or a generator; got "
                            f"{type(data).__name__}; the model's input is a {want}")
    parts, n = [], 0
    for item in data:
        if isinstance(item, dict):
            item = next(iter(item.values()))
        if isinstance(item, (tuple, list)) and len(item) and not np.isscalar(item[0]):
            item = item[0]  # (x, y) pairs or [x] lists
        arr = np.asarray(item)
        parts.append(arr)
        n += len(arr) if arr.ndim else 1
        if n >= max_samples:
            break
    if not parts:
        raise HomlEdgeError(f"calibration data is empty; the model's input is a {want}")
    try:
        shapes = {p.shape[1:] if p.ndim else () for p in parts}
        ndims = {p.ndim for p in parts}
        if len(ndims) == 1 and len(shapes) == 1:
            return np.concatenate(parts) if parts[0].ndim else np.asarray(parts)
        return np.stack(parts)
    except ValueError:
        raise HomlEdgeError(f"calibration batches have different shapes {sorted({p.shape for p in parts})[:3]}; "
                            f"the model's input is a {want}") from None
