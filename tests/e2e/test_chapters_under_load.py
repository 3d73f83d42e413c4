"""The root conftest runs every chapter cell with a timing assert (a claim cell) beside a busy core: it must find
them, burn during them, and only during them."""
import importlib.util
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(root_conftest)


def _nb(path: Path, source: str):
    cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_chapters_with_timing_asserts_are_found(tmp_path):
    _nb(tmp_path / "01_fast.ipynb", "xnn_us, ref_us = 1.0, 2.0\nassert xnn_us < ref_us")
    _nb(tmp_path / "02_sizes.ipynb", "assert table.loc['int8', 'size_ratio'] >= 3.5")
    _nb(tmp_path / "03_speed.ipynb", "assert t.loc['int8', 'speedup'] > 1.2  # measured")
    assert root_conftest.timing_chapters(tmp_path) == {"01_fast.ipynb", "03_speed.ipynb"}
    # and the real chapters: at least chapter 04's channel-pruning speed-up is a timing claim
    assert "04_pruning.ipynb" in root_conftest.timing_chapters(ROOT / "notebooks")


def test_the_busy_core_burns_a_core():
    busy = root_conftest._BusyCore()
    busy.start("x.ipynb")
    time.sleep(2.0)
    busy.stop()
    (chapter, wall, cpu, alive), = busy.log
    assert chapter == "x.ipynb" and wall >= 2.0 and alive
    # its share of the cores depends on what else runs (the suite itself, the second environment); spinning, not
    # sleeping, is what counts: a Python that starts and exits burns about 0.03 s
    assert cpu >= 0.15, f"the busy process burned {cpu:.2f} s of CPU in {wall:.2f} s"


def test_claim_cells_and_only_they_run_beside_the_busy_core(tmp_path):
    """A real nbval run of a two-cell notebook with the root conftest as its plugin: the kernel sees a busy process
    started by its own pytest during the claim cell, and none during the other cell."""
    import subprocess
    import sys

    probe = ("import os\n"
             "def burners():   # the busy processes that this kernel's pytest started, by their tag\n"
             "    tag = os.environ['HOML_EDGE_BUSY_TAG'].encode()\n"
             "    found = []\n"
             "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
             "        try:\n"
             "            cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')\n"
             "        except OSError:\n"
             "            continue\n"
             "        found += [pid] if tag in cmd and b'while time.time() < end' in b' '.join(cmd) else []\n"
             "    return found\n")
    cells = [probe + "assert burners() == [], f'a busy core outside a claim cell: {burners()}'",
             probe + "median_ms = 1.0\nassert len(burners()) == 1 and median_ms > 0, burners()   # a claim cell"]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                    for c in cells],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "01_probe.ipynb").write_text(json.dumps(nb))
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "conftest", "-p", "no:cacheprovider",
                        "-p", "no:randomly", "-o", "addopts=", "-q", str(tmp_path / "01_probe.ipynb")],
                       cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]


def test_the_busy_core_stops_when_its_pytest_is_killed():
    """A pytest killed in a claim cell (a timeout, a crashed xdist worker) must not leave a core spinning for the
    hour the busy process allows itself: it stops when its parent goes."""
    import subprocess
    import sys

    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); import conftest\n"
            "busy = conftest._BusyCore(); busy.start('x'); print(busy.proc.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()

    def spinning():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False

    deadline = time.time() + 10
    while spinning() and time.time() < deadline:
        time.sleep(0.1)
    assert not spinning(), f"the busy process {pid} still spins after its parent was killed"
