"""The chapters' speed claims are run with one core busy.

A claim in a chapter must hold on any x86-64 CPU and on a shared machine, so every chapter cell that asserts
something about time (a speed-up, a latency, threads, XNNPACK) runs under nbval beside a process that keeps one core
busy: the claim cells (each measures and asserts in the same cell), not the whole chapter, whose other cells would
only share the suite's two cores with the burner. The cells are found by reading their code, not listed, so a new
timing assert is covered by itself. HOML_EDGE_NO_LOAD=1 turns the busy core off (to time a chapter alone).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# an assert line that compares something measured in time
TIMING_ASSERT = re.compile(r"^\s*assert\b.*(speedup|speed_up|latency|_us\b|_ms\b|median|xnn|thread|faster|slower)",
                           re.IGNORECASE | re.MULTILINE)
# it says so once it spins, so that a claim cell never starts before the load does (the start of a Python takes
# tens of milliseconds, longer on a loaded machine)
# (and it stops when its pytest goes, even if that pytest was killed)
BURN = ("import os, sys, time\nend = time.time() + 3600\nparent = os.getppid()\nsys.stdout.write('spinning\\n')\n"
        "sys.stdout.flush()\nwhile time.time() < end and os.getppid() == parent:\n    pass\n")
# the busy process carries this session's tag in its command line, and the kernels that nbval starts inherit it, so
# a kernel can find the load its own pytest started (whatever launches the kernel, and beside other pytest sessions)
BUSY_TAG = os.environ["HOML_EDGE_BUSY_TAG"] = f"homl-edge-busy-core-of-pytest-{os.getpid()}"


def timing_chapters(folder: Path) -> set[str]:
    """The chapter notebooks (file names) with at least one timing assert in a code cell."""
    found = set()
    for nb in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        if any(c["cell_type"] == "code" and is_claim_cell("".join(c["source"])) for c in cells):
            found.add(nb.name)
    return found


class _BusyCore:
    def __init__(self):
        self.proc = None
        self.chapter = None
        self.started = 0.0
        self.log: list[tuple[str, float, float, bool]] = []  # chapter, wall s, CPU s burned, still spinning at the end

    def start(self, chapter: str):
        self.stop()
        self.proc = subprocess.Popen([sys.executable, "-c", BURN, BUSY_TAG], stdout=subprocess.PIPE, text=True)
        self.proc.stdout.readline()   # wait until it spins
        self.chapter, self.started = chapter, time.time()

    def stop(self):
        if self.proc is None:
            return
        wall = time.time() - self.started
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            cpu = float("nan")
        alive = self.proc.poll() is None
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.log.append((self.chapter, wall, cpu, alive))
        self.proc = None


_busy = _BusyCore()


def is_claim_cell(source: str) -> bool:
    """A code cell with at least one timing assert."""
    return bool(TIMING_ASSERT.search(source))


def pytest_runtest_setup(item):
    if os.environ.get("HOML_EDGE_NO_LOAD") == "1":
        return
    cell = getattr(item, "cell", None)  # nbval's item for one code cell of a chapter
    if cell is not None and Path(str(item.fspath)).suffix == ".ipynb" and is_claim_cell(cell.get("source", "")):
        _busy.start(f"{Path(str(item.fspath)).name} {item.name}")


def pytest_runtest_teardown(item):
    _busy.stop()


def pytest_sessionfinish(session, exitstatus):
    _busy.stop()


def pytest_terminal_summary(terminalreporter):
    for chapter, wall, cpu, _ in _busy.log:
        terminalreporter.write_line(f"under load: {chapter} ran its cells beside a busy core "
                                    f"({cpu:.0f} s of CPU burned in {wall:.0f} s)")
