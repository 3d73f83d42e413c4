"""The package: its skeleton, the lock, the README commands, CI, Binder, the TensorFlow import."""
import os
import re
import sys
import tomllib

import numpy as np
import pytest

from conftest import ROOT, run_py


def test_import_is_fast_and_does_not_load_tensorflow():
    r = run_py("import time, sys; t = time.perf_counter(); import homl_edge as he; dt = time.perf_counter() - t;"
               "loaded = ('tensorflow' in sys.modules, 'ai_edge_litert' in sys.modules);"
               "t = time.perf_counter(); import tensorflow; dt_tf = time.perf_counter() - t;"
               "print(dt, dt_tf, *loaded)")
    assert r.returncode == 0, r.stderr
    dt, dt_tf, tf_loaded, litert_loaded = r.stdout.split()
    assert tf_loaded == "False" and litert_loaded == "False"
    print(f"import homl_edge {float(dt) * 1e3:.0f} ms, then import tensorflow {float(dt_tf) * 1e3:.0f} ms")
    assert float(dt) < float(dt_tf) / 5  # the magics load without paying for TensorFlow


def test_tensorflow_is_set_up_for_keras_2():
    r = run_py("import homl_edge as he; tf = he._tf.tf(); import tf_keras, os;"
               "print(tf.keras.Model is tf_keras.Model, os.environ['TF_USE_LEGACY_KERAS'])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "1"]


def test_homl_edge_after_tensorflow_with_keras_3_needs_no_restart():
    """TensorFlow (and Keras 3) imported first, as in most users' notebooks, ``tf.keras`` not used yet: homl-edge
    loads and converts, ``tf.keras`` (and ``tf.optimizers``, ``tf.losses``...) stays Keras 3, and TF-MOT
    binds to tf_keras. They used to become tf_keras here (homl-edge set TF_USE_LEGACY_KERAS for TF-MOT before
    TensorFlow's lazy Keras modules had picked), and a package built on tf.keras and imported later (mtcnn's nets)
    then failed inside ``keras.Model(inp, net(inp))`` with "'tuple' object has no attribute 'rank'"."""
    code = ("import os; os.environ.pop('TF_USE_LEGACY_KERAS', None)   # as in a fresh Python (this worker set it)\n"
            "import tensorflow as tf, keras\n"
            "import homl_edge as he\n"
            "he.quantize(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), 'float32')\n"
            "mot = he._keras.tfmot(); import tf_keras\n"
            "from tensorflow_model_optimization.python.core.keras import compat\n"
            "print(tf.keras.Model is keras.Model, tf.optimizers.Adam is keras.optimizers.Adam,\n"
            "      tf.losses.Loss is keras.losses.Loss,\n"
            "      compat.keras.Model is tf_keras.Model, he._tf.keras_is_legacy())\n")
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-5:] == ["True", "True", "True", "True", "False"]


def test_digits_are_bundled_float32_nhwc():
    import homl_edge as he

    (x, y), (xt, yt) = he.datasets.digits()
    assert x.shape == (1437, 8, 8, 1) and xt.shape == (360, 8, 8, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == set(range(10)) and len(y) == 1437
    # the split is seeded: the same call gives the same split
    (x2, _), _ = he.datasets.digits()
    assert np.array_equal(x, x2)


def test_load_ext_registers_magics_with_help_and_unload_removes_them():
    from IPython.core.interactiveshell import InteractiveShell

    from homl_edge.magics import MAGICS

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "homl_edge")
    line = ip.magics_manager.magics["line"]
    for name in MAGICS:
        assert name in line, name
        doc = line[name].__doc__
        assert doc and f"%{name}" in doc and "Example:" in doc, name
    ip.run_line_magic("unload_ext", "homl_edge")
    assert not any(name in ip.magics_manager.magics["line"] for name in MAGICS)


def test_lock_is_fully_pinned_and_carries_the_stack():
    lock = (ROOT / "binder/requirements.txt").read_text().splitlines()
    pins = [l for l in lock if l.strip() and not l.startswith("#")]
    assert len(pins) > 100
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", p) for p in pins), [p for p in pins if "==" not in p]
    have = {p.split("==")[0].lower().replace("_", "-"): p.split("==")[1] for p in pins}
    for name, version in {"tensorflow": "2.19.0", "tf-keras": "2.19.0", "tensorflow-model-optimization": "0.8.0",
                          "tensorflowjs": "4.22.0", "ydf": "0.11.0", "ai-edge-litert": "2.3.0",
                          "packaging": "23.2"}.items():
        assert have.get(name) == version, name
    for name in ("jupyterlab", "ipywidgets", "anywidget", "nbval", "scikit-learn", "matplotlib", "tqdm", "pytest",
                 "playwright", "pandas"):
        assert name in have, name
    text = "\n".join(lock)
    assert "# ydf>0.11.0 breaks `import tensorflowjs`" in text


@pytest.mark.lock
def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    lock = (ROOT / "binder/requirements.txt").read_text().splitlines()
    pins = dict(l.split("==") for l in lock if "==" in l and not l.startswith("#"))
    for name in ("tensorflow", "tf_keras", "tensorflowjs", "ai-edge-litert", "jupyterlab", "numpy"):
        assert version(name) == pins[name], name


def test_pyproject_declares_package_extras_and_script():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    proj = meta["project"]
    assert meta["build-system"]["build-backend"] == "hatchling.build"
    assert proj["name"] == "homl-edge" and proj["requires-python"] == ">=3.10"
    assert {"test", "web"} <= set(proj["optional-dependencies"])
    assert proj["scripts"]["homl-edge"] == "homl_edge.cli:main"
    assert all(not re.search(r"==", d) or d.startswith("ydf") for d in proj["dependencies"])


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, flags=re.S)
    commands = [l.strip() for b in blocks for l in b.splitlines() if l.strip().startswith("make ")]
    assert commands == ["make lab", "make test"]
    assert "mybinder.org/badge" in readme
    ci = [l for l in (ROOT / ".ci/run").read_text().splitlines() if l.strip() and not l.startswith(("#", "set ", "cd "))]
    assert ci == ["make test"]


@pytest.mark.lock
def test_make_install_is_idempotent():
    import subprocess

    r = subprocess.run(["make", "-n", "install"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0
    assert "pip install" not in r.stdout, "a second `make install` would reinstall: " + r.stdout


def test_binder_installs_the_lock_and_the_package():
    runtime = (ROOT / "binder/runtime.txt").read_text().strip()
    assert runtime == "python-3.11"
    post = (ROOT / "binder/postBuild").read_text()
    assert "pip install" in post and "--no-deps" in post
    assert (ROOT / "binder/postBuild").stat().st_mode & 0o111


def test_cli_help_everywhere():
    from homl_edge import cli

    parser = cli.build_parser()
    for cmd in ("quantize", "inspect", "export-tfjs", "export-c", "compare", "prune", "micro", "gpu"):
        with pytest.raises(SystemExit) as e:
            parser.parse_args([cmd, "--help"])
        assert e.value.code == 0


@pytest.mark.lock
def test_wheel_ships_the_widget_sources_and_the_web_app(tmp_path):
    import subprocess
    import zipfile

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("homl_edge-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "widgets").rglob("*") if p.is_file())
    assert {"widgets/tradeoff.js", "widgets/tradeoff.css", "widgets/page/app.js", "widgets/page/pad.js",
            "widgets/page/sw.js", "widgets/page/index.html"} <= set(sources)
    for name in sources:  # every front-end source of the top-level widgets/, inside the package
        assert f"homl_edge/{name}" in names, name
    assert any(n.endswith("entry_points.txt") for n in names)
    # the wheel's own copy is what an installed package finds (not the checkout's): unpacked, first on the path
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from homl_edge._widgets import widgets_dir, widget_file; print(widgets_dir());"
            f"print(widget_file('page/index.html').read_text() == open({str(ROOT / 'widgets/page/index.html')!r}).read())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
                       env=dict(os.environ, PYTHONPATH=str(site)))  # not the checkout's folder, where -c would look first
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(site / "homl_edge" / "widgets"), "True"]
    from homl_edge._widgets import widgets_dir  # this editable install: the checkout's own folder

    assert widgets_dir() == ROOT / "widgets"


@pytest.mark.lock
def test_make_lab_starts_jupyterlab_on_the_notebooks(tmp_path):
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, LAB_ARGS="--no-browser", JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(["make", "lab", f"PORT={port}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        body, deadline = None, time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, proc.stderr.read()[-2000:] if proc.poll() is not None else "no answer in 60 s"
        assert '"version"' in body
        try:  # the notebooks are served behind the token: without it, 403 (the server is up and guarded)
            status = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5).status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status in (200, 403)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def test_tests_are_grouped_by_layer():
    """tests/README.md: pure units, core by module, faces, end to end; a core file is named after its module."""
    tests = ROOT / "tests"
    assert not list(tests.glob("test_*.py")), "a test file outside the layer folders"
    layers = {p.name for p in tests.iterdir() if p.is_dir() and list(p.glob("test_*.py"))}
    assert layers == {"unit", "core", "faces", "e2e"}, layers
    modules = {p.stem.lstrip("_") for p in (ROOT / "homl_edge").rglob("*.py")}
    modules |= {"keras"}  # the _keras_* adapters
    for f in (tests / "core").glob("test_*.py"):
        assert f.stem[len("test_"):].split("_")[0] in modules, f"{f.name} names no module of homl_edge"
    for f in (tests / "unit").glob("test_*.py"):
        assert f.stem.startswith("test_pure_") and f.stem[len("test_pure_"):] in modules, f.name
    # the pure units never import TensorFlow: they run in a second in any environment
    r = run_py("import sys, pytest; rc = pytest.main(['-q', '-p', 'no:cacheprovider', '-o', 'addopts=', "
               f"{str(tests / 'unit')!r}]); print('tensorflow' in sys.modules); sys.exit(rc)")
    assert r.returncode == 0 and r.stdout.strip().endswith("False"), r.stdout[-2000:]
