"""Binder's plan, read from repo2docker itself (`--no-build` prints the Dockerfile it would build): the lock, the
apt packages the chapters need, and postBuild. The image is not built here (no Docker engine); the README says so."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools"  # repo2docker in its own venv: it must not touch the project's pins


def _repo2docker() -> Path:
    exe = TOOLS / "bin" / "repo2docker"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "jupyter-repo2docker==2026.4.0"], check=True, timeout=600)
    return exe


@pytest.fixture(scope="module")
def dockerfile(tmp_path_factory):
    # a copy of the tracked files only: what Binder would see in the repository
    src = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        target = src / f.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / f.decode()).is_file():
            shutil.copy2(ROOT / f.decode(), target)
    r = subprocess.run([str(_repo2docker()), "--no-build", "--debug", str(src)], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout + r.stderr


def test_binder_installs_the_lock_python_311_and_postbuild(dockerfile):
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    assert "python=3.11" in dockerfile or "PYTHON_VERSION=3.11" in dockerfile or "python3.11" in dockerfile


def test_binder_installs_what_the_chapters_need(dockerfile):
    apt = [l.strip() for l in (ROOT / "binder/apt.txt").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
    assert {"gcc", "g++", "binutils", "nodejs", "npm", "libnss3"} <= set(apt)
    for pkg in apt:
        assert pkg in dockerfile, pkg
    post = (ROOT / "binder/postBuild").read_text()
    assert "playwright install chromium" in post and "npm ci" in post and "pip install --no-deps" in post


def test_the_server_extension_ships_with_the_package():
    """The extension that serves exported pages inside notebooks is enabled by a config file in the wheel."""
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shared = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared["jupyter-config/homl_edge.json"] == "etc/jupyter/jupyter_server_config.d/homl_edge.json"
    installed = Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d/homl_edge.json"
    assert installed.is_file() and '"homl_edge": true' in installed.read_text()
