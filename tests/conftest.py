"""Shared fixtures: the digits data and the reference CNN, trained once per test session."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


_MADE_CACHE = None   # the cache folder this process made (the session's first process), removed when it ends


def pytest_configure(config):
    # conversions are cached in a fresh folder per test session: never the user's home, never an older run's; the
    # xdist workers and the kernels inherit it, and the process that made it removes it at the end
    global _MADE_CACHE
    import tempfile

    if "HOML_EDGE_CACHE" not in os.environ:
        os.environ["HOML_EDGE_CACHE"] = _MADE_CACHE = tempfile.mkdtemp(prefix="homl-edge-cache-")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_unconfigure(config):
    import shutil

    if _MADE_CACHE:
        shutil.rmtree(_MADE_CACHE, ignore_errors=True)


# the test modules that tests/faces/test_panels_in_any_order.py runs in a shuffled order
SHUFFLED = ["tests/faces/test_panels.py", "tests/unit"]


@pytest.hookimpl(trylast=True)   # after -m and -k have deselected what they deselect
def pytest_collection_modifyitems(config, items):
    """Heavy work once per session: a test marked ``chapter("NN_name")`` asserts what that chapter asserts on the
    same work (the same model, conversion or processes). In a session that runs the chapter under nbval (the main
    suite) the chapter is the proof and the test is deselected; run alone, or in the second environment (which runs
    no chapter), the test runs. The shuffled-order run stands for the modules it shuffles in the same way."""
    chapter_of = {i: m.args[0] for i in items if (m := i.get_closest_marker("chapter"))}
    for name in set(chapter_of.values()):
        if not (ROOT / "notebooks" / f"{name}.ipynb").exists():
            raise pytest.UsageError(f"@pytest.mark.chapter({name!r}): no notebooks/{name}.ipynb; name the chapter "
                                    "whose cells assert what the test asserts")
    running = {Path(str(i.fspath)).stem for i in items if Path(str(i.fspath)).suffix == ".ipynb"}
    proven = {i for i, name in chapter_of.items() if name in running}
    # the same for the shuffled-order run: it runs every test of SHUFFLED (and fails on any failure), so where it is
    # in the session those tests are not run a second time in the usual order
    if any(Path(str(i.fspath)).name == "test_panels_in_any_order.py" for i in items):
        shuffled = [ROOT / m for m in SHUFFLED]
        proven |= {i for i in items if any(Path(str(i.fspath)).is_relative_to(m) for m in shuffled)}
    if proven:
        config.hook.pytest_deselected(items=list(proven))
        items[:] = [i for i in items if i not in proven]


@pytest.fixture(scope="session")
def digits():
    import homl_edge as he

    return he.datasets.digits()


@pytest.fixture(scope="session")
def trained(digits):
    """The chapters' digits CNN, trained for 5 epochs (about 2 s)."""
    import homl_edge as he

    model, _ = he.models.trained_digits_cnn(epochs=5, seed=0)
    return model


@pytest.fixture(scope="session")
def keras_accuracy(trained, digits):
    (_, _), (xt, yt) = digits
    return float(trained.evaluate(xt, yt, verbose=0)[1])


@pytest.fixture(scope="session")
def lite_f32(trained):
    import homl_edge as he

    return he.quantize(trained, "float32")


@pytest.fixture(scope="session")
def lite_int8io(trained, digits):
    import homl_edge as he

    (x, _), _ = digits
    return he.quantize(trained, "int8-io", data=x[:200])


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_py(code: str, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter of this venv (for import-time and runtime-initialisation checks)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=e,
                          cwd=str(ROOT))


def sha(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
