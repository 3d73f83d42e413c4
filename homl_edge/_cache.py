"""The content cache of conversions: the key (architecture, weights, custom code, calibration data, options and
the :func:`versions` of everything that shapes the bytes), kept in memory and on disk, each disk entry checked
before use. ``homl_edge.quantization`` exports every name.
"""
from __future__ import annotations

import collections
import hashlib
import inspect
import json
import os
from pathlib import Path

import numpy as np

from . import _keras
from .errors import HomlEdgeError


_memory_cache: "collections.OrderedDict[str, bytes]" = collections.OrderedDict()
_MEMORY_CACHE_SIZE = 64


def cache_dir() -> Path | None:
    """Where conversions are kept between sessions: ``$HOML_EDGE_CACHE`` (``off`` disables), else ~/.cache."""
    env = os.environ.get("HOML_EDGE_CACHE")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "homl-edge"
    return base / "tflite"


def clear_cache() -> None:
    """Forget every cached conversion (memory and disk)."""
    _memory_cache.clear()
    d = cache_dir()
    if d and d.exists():
        for f in (*d.glob("*.tflite"), *d.glob("*.sha256")):
            f.unlink(missing_ok=True)


def _code_digest() -> str:
    """A digest of the whole homl_edge package's source (every ``.py`` file, by path): any change to its code
    misses every older cache entry."""
    if "code" not in _KEY_PARTS:
        pkg = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for f in sorted(pkg.rglob("*.py")):
            h.update(f"{f.relative_to(pkg).as_posix()}|".encode() + f.read_bytes())
        _KEY_PARTS["code"] = h.hexdigest()[:16]
    return _KEY_PARTS["code"]


def versions() -> dict:
    """The versions of everything that shapes a converted file's bytes (part of every cache key)."""
    if "versions" not in _KEY_PARTS:
        from importlib import metadata

        v = {}
        for dist in ("tensorflow", "tf-keras", "keras", "litert-quantizer", "ai-edge-quantizer", "ai-edge-litert",
                     "numpy"):
            try:
                v[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                v[dist] = None
        _KEY_PARTS["versions"] = v
    from ._version import __version__

    import sys

    return {**_KEY_PARTS["versions"], "homl-edge": __version__, "conversion-code": _code_digest(),
            "python": "%d.%d" % sys.version_info[:2]}


_KEY_PARTS: dict = {}


def _versions_key(digest: str, what: str) -> str:
    return hashlib.sha256(f"{what}|{json.dumps(versions(), sort_keys=True)}|{digest}".encode()).hexdigest()


def cache_key(model, mode: str, calib, extra: str = "", *, digest: str | None = None) -> str:
    """Content address of a conversion: model (architecture + weights: :func:`model_digest`, or ``digest`` when the
    caller has it already), mode, options, calibration data and :func:`versions`."""
    return content_key(mode, extra, [("model", (digest or model_digest(model)).encode())], calib)


def model_digest(model) -> str:
    """One pass over a model's architecture, custom code and weights (or a SavedModel's files): the hex digest that
    every key of that model is made from, so that the keys of several conversions of one model read its weights
    once."""
    if isinstance(model, _keras.SavedModelSource):
        parts = ((str(f.relative_to(model.path)), f.read_bytes())
                 for f in sorted(model.path.rglob("*")) if f.is_file())
    else:
        def weights():
            yield "architecture", model.to_json().encode()
            yield from custom_code(model)
            for w in model.weights:
                v = np.asarray(w.numpy())
                yield f"{getattr(w, 'path', None) or w.name}{v.shape}{v.dtype}", np.ascontiguousarray(v).tobytes()

        parts = weights()
    h = hashlib.sha256()
    for label, data in parts:   # each part with its length: no two sequences of parts share a digest
        h.update(f"{label}|{len(data)}|".encode())
        h.update(data)
    return h.hexdigest()


_LIBRARIES = {"keras", "tf_keras", "tensorflow", "tensorflow_model_optimization", "homl_edge", "builtins", "numpy",
              "abc", "typing", "functools"}


def _is_library(obj) -> bool:
    return (getattr(obj, "__module__", None) or "builtins").split(".")[0] in _LIBRARIES


def _code_bytes(code) -> bytes:
    """A code object's bytecode, names and constants (nested code objects too): what it computes, stably."""
    parts = [code.co_code, repr((code.co_names, code.co_varnames, code.co_freevars)).encode()]
    for c in code.co_consts:
        parts.append(_code_bytes(c) if hasattr(c, "co_code") else repr(c).encode())
    return b"|".join(parts)


def _function_code(fn) -> bytes:
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    out = _code_bytes(code) if code is not None else b""
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if isinstance(v, (int, float, str, bytes, bool, tuple, type(None))):
            out += b"|closure|" + repr(v).encode()
    try:
        out += inspect.getsource(fn).encode()
    except (OSError, TypeError):
        pass
    return out


def custom_code(model):
    """(label, bytes) of the code that a model runs and its config does not hold: every class of its layers (and
    the model's own class) defined outside Keras/TensorFlow, and every such function a layer keeps (a custom
    activation), as source (where ``inspect`` finds it) and bytecode. A changed ``call()`` is another model."""
    import types

    layers = getattr(model, "_flatten_layers", None)
    layers = list(layers(include_self=True, recursive=True)) if layers else [model, *getattr(model, "layers", [])]
    seen = set()
    for layer in layers:
        for cls in type(layer).__mro__:
            if _is_library(cls) or cls in seen:
                continue
            seen.add(cls)
            code = b""
            try:
                code += inspect.getsource(cls).encode()
            except (OSError, TypeError):
                pass
            for name, member in sorted(vars(cls).items()):
                for fn in (member, getattr(member, "__func__", None), getattr(member, "fget", None)):
                    if isinstance(fn, types.FunctionType):
                        code += f"|{name}|".encode() + _function_code(fn)
            yield f"class {cls.__module__}.{cls.__qualname__}", code
        for name, value in sorted(vars(layer).items()):
            if isinstance(value, types.FunctionType) and not _is_library(value) and value not in seen:
                seen.add(value)
                yield f"function {layer.name}.{name}", _function_code(value)


def content_key(mode: str, extra: str, parts, calib=None) -> str:
    """The key of :func:`cache_key` from its pieces: ``parts`` are (label, bytes) pairs, each hashed with its
    length so that no two different sequences of parts share a key; ``calib`` is an array or None."""
    h = hashlib.sha256()
    h.update(f"{mode}|{extra}|".encode())
    for label, data in parts:
        h.update(f"{label}|{len(data)}|".encode())
        h.update(data)
    if calib is not None:
        calib = np.ascontiguousarray(calib)
        h.update(f"calib{calib.shape}{calib.dtype}|".encode())
        h.update(calib.tobytes())
    return _versions_key(h.hexdigest(), "keras")


def _cache_get(key):
    """The cached bytes for ``key``, or None. An entry read from disk is trusted only when its content hash matches
    the one stored beside it and LiteRT builds and runs it in the child process (as any other bytes); a damaged,
    truncated or replaced entry is deleted and the conversion runs again."""
    if key in _memory_cache:  # this process made (and checked) these bytes
        _memory_cache.move_to_end(key)
        return _memory_cache[key]
    d = cache_dir()
    if d is None:
        return None
    f, digest = d / f"{key}.tflite", d / f"{key}.sha256"
    if not f.is_file():
        return None
    try:
        data = f.read_bytes()
        ok = digest.is_file() and digest.read_text().strip() == hashlib.sha256(data).hexdigest()
    except OSError:
        ok = False
    if ok:
        from .lite import verify

        try:
            verify(data, "a cached conversion")
        except HomlEdgeError:
            ok = False
    if not ok:
        for p in (f, digest):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        return None
    _remember(key, data)
    return data


def _cache_put(key, content):
    _remember(key, content)
    d = cache_dir()
    if d is None:
        return
    try:
        from ._files import atomic_write

        d.mkdir(parents=True, exist_ok=True)
        atomic_write(d / f"{key}.tflite", content, overwrite=True)
        atomic_write(d / f"{key}.sha256", hashlib.sha256(content).hexdigest().encode(), overwrite=True)
    except (OSError, HomlEdgeError):
        pass  # a read-only home folder only costs the cross-session cache


def _remember(key, content):
    _memory_cache[key] = content
    _memory_cache.move_to_end(key)
    while len(_memory_cache) > _MEMORY_CACHE_SIZE:
        _memory_cache.popitem(last=False)
