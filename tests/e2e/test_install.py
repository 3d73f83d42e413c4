"""homl-edge installs beside the TensorFlow a user has, and says in one line what a missing optional part needs."""
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from conftest import ROOT, run_py


def _deps():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(d).name: Requirement(d) for d in meta["dependencies"]}, meta["optional-dependencies"]


def test_requirements_admit_the_tensorflow_and_numpy_users_have():
    deps, extras = _deps()
    for v in ("2.16.1", "2.17.0", "2.19.0", "2.20.0", "2.21.0"):
        assert deps["tensorflow"].specifier.contains(v), v
    for v in ("1.26.4", "2.1.3", "2.5.5"):
        assert deps["numpy"].specifier.contains(v), v
    # the newest tf-keras requires the newest TensorFlow (and TF-MOT 0.8.1 requires tf-keras): as hard requirements
    # they made `pip install .` replace TensorFlow 2.19 with 2.21 in a venv that had no tf-keras (measured)
    assert "tf-keras" not in deps and "tensorflow-model-optimization" not in deps
    assert {Requirement(d).name for d in extras["keras2"]} == {"tf-keras", "tensorflow-model-optimization"}
    # the TF.js converter without its TensorFlow-2.19 dependencies: nothing in the extra may pin TensorFlow
    assert not any(Requirement(d).name.startswith("tensorflow") for d in extras["web-nodeps"])


def test_a_missing_keras2_is_one_line_naming_the_matching_versions():
    r = run_py("""
import sys
sys.modules['tf_keras'] = None                       # as if not installed
sys.modules['tensorflow_model_optimization'] = None
import numpy as np, keras, tensorflow as tf
import homl_edge as he
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
m.compile('adam', 'sparse_categorical_crossentropy')
try:
    he.prune(m, (np.zeros((8, 4), 'float32'), np.zeros(8, 'int64')), sparsity=0.5, epochs=1)
except he.HomlEdgeError as e:
    minor = '.'.join(tf.__version__.split('.')[:2])
    print('MESSAGE', e)
    assert f"pip install 'tf-keras~={minor}.0'" in str(e), e
    assert '\\n' not in str(e)
""")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MESSAGE" in r.stdout


def test_tfjs_converter_imports_without_the_modules_a_keras_export_never_uses(tmp_path):
    """Beside TensorFlow 2.21 tensorflow-decision-forests and JAX cannot be installed (they pin TensorFlow 2.19) and
    tensorflow_hub 0.16 fails to import (no pkg_resources in setuptools 81+): blocked here, the export still works,
    and the stand-ins do not outlive the converter's import."""
    r = run_py(f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow_decision_forests', 'jax', 'tensorflow_hub'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
import homl_edge as he
from homl_edge import _tfjs
(x, y), (xt, yt) = he.datasets.digits()
k2 = he._keras.legacy()
m = k2.Sequential([k2.Input((8, 8, 1)), k2.layers.Flatten(), k2.layers.Dense(10)])
out = he.export_tfjs(m, r'{tmp_path}/web')
assert sorted(_tfjs.stand_ins_used()) == ['jax', 'jax.experimental', 'jax.experimental.jax2tf', 'tensorflow_decision_forests', 'tensorflow_hub'], _tfjs.stand_ins_used()
for name in ('jax', 'tensorflow_decision_forests', 'tensorflow_hub'):
    assert name not in sys.modules, name
    try:
        __import__(name)
        raise SystemExit(name + ' imported after the converter: a stand-in leaked')
    except ImportError:
        pass
back = he.load_tfjs(out.path)
print('DIFF', float(np.abs(back.predict(xt[:20], verbose=0) - m.predict(xt[:20], verbose=0)).max()))
""")
    assert r.returncode == 0, r.stderr[-3000:]
    diff = float(r.stdout.split("DIFF")[1])
    assert diff == 0.0
