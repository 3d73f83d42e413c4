"""The one place that imports the official TF.js converter (``tensorflowjs``).

``import tensorflowjs`` imports every converter it has: the SavedModel one imports ``tensorflow_decision_forests``
(which pins TensorFlow 2.19) and the JAX one imports ``jax.experimental.jax2tf``. A Keras or SavedModel export uses
neither. Beside a newer TensorFlow, where those packages cannot be installed, the converter is installed without its
dependencies (``pip install --no-deps tensorflowjs``) and imported here with empty stand-ins for just those modules (and
``tensorflow_hub``, for TF-Hub modules only, whose 0.16 release fails to import beside setuptools 81+), and only while ``tensorflowjs`` imports: an installed module is never replaced, and the stand-ins are
removed from ``sys.modules`` afterwards, so the user's own ``import jax`` still fails or succeeds as before.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import types

from .errors import HomlEdgeError

# module -> why a Keras/SavedModel export never needs it
_UNUSED = {
    "tensorflow_decision_forests": "decision-forest models only",
    "jax": "JAX functions only",
    "jax.experimental": "JAX functions only",
    "jax.experimental.jax2tf": "JAX functions only",
    "tensorflow_hub": "TF-Hub modules only",
}

INSTALL_HINT = ("pip install 'homl-edge[web]' (TensorFlow 2.19), or beside a newer TensorFlow: "
                "pip install 'homl-edge[web-nodeps]' && pip install --no-deps tensorflowjs==4.22.0")


def _installed(root: str) -> bool:
    """Importable as it is (tensorflowjs imports it next anyway); a broken install counts as missing: tensorflow_hub
    0.16 imports ``pkg_resources``, which setuptools 81 and later no longer have."""
    if root in sys.modules:
        return True
    try:
        importlib.import_module(root)
        return True
    except Exception:  # noqa: BLE001 - any failure to import means tensorflowjs would fail on it too
        for name in [n for n in sys.modules if n == root or n.startswith(root + ".")]:
            sys.modules.pop(name, None)
        return False


@contextlib.contextmanager
def _stand_ins():
    """Empty modules for the unused imports that are not installed, for the duration of the block."""
    missing = {name.split(".")[0] for name in _UNUSED if not _installed(name.split(".")[0])}
    added = []
    for name, why in _UNUSED.items():
        if name.split(".")[0] not in missing:
            continue
        mod = types.ModuleType(name, f"homl-edge stand-in: tensorflowjs imports it for {why}")
        sys.modules[name] = mod
        added.append(name)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, mod)
    try:
        yield added
    finally:
        for name in added:
            sys.modules.pop(name, None)


def stand_ins_used() -> list[str]:
    """Which unused modules the last import of ``tensorflowjs`` was given stand-ins for (empty when all installed)."""
    return list(_last_stand_ins)


_last_stand_ins: list[str] = []


def import_tfjs():
    """``tensorflowjs``, imported quietly (its TF-DF banner kept out) and on any supported TensorFlow."""
    if "tensorflowjs" in sys.modules:
        return sys.modules["tensorflowjs"]
    if importlib.util.find_spec("tensorflowjs") is None:
        raise HomlEdgeError(f"the TF.js converter is not installed; {INSTALL_HINT}")
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")  # its HTML banner in notebooks
    with _stand_ins() as added, contextlib.redirect_stdout(io.StringIO()):
        try:
            import tensorflowjs
        except ImportError as e:
            for name in [n for n in sys.modules if n == "tensorflowjs" or n.startswith("tensorflowjs.")]:
                sys.modules.pop(name, None)
            raise HomlEdgeError(f"the TF.js converter cannot be imported ({e}); {INSTALL_HINT}") from None
    _last_stand_ins[:] = added
    return tensorflowjs
