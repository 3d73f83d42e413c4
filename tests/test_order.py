"""No test depends on another having run first: pytest-randomly shuffles the panel tests (which share the trained
model and the conversion cache) under several seeds, and every order passes.

pytest-randomly is off in the normal run (`-p no:randomly` in pyproject.toml): it would shuffle the cells of the
chapter notebooks too, which must run top to bottom. Here it is switched back on for the unit-test modules only.
"""
import re
import subprocess
import sys

import pytest

from conftest import ROOT

MODULES = ["tests/test_panels.py", "tests/test_pure.py"]
SEEDS = [1, 2, 3]


def _order(seed):
    r = subprocess.run([sys.executable, "-m", "pytest", *MODULES, "-p", "randomly", f"--randomly-seed={seed}",
                        "-p", "no:cacheprovider", "--collect-only", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return [line for line in r.stdout.splitlines() if "::" in line]


@pytest.mark.slow
def test_panel_tests_pass_in_shuffled_orders():
    orders = {seed: _order(seed) for seed in SEEDS}
    assert len({tuple(o) for o in orders.values()}) == len(SEEDS)  # the seeds really give different orders
    panels = {seed: [t.split("::")[1] for t in o if "test_panels" in t] for seed, o in orders.items()}
    # the order that used to fail: the button test ran first and left its runs in a shared panel
    assert any(p.index("test_optimizer_panel_buttons_call_the_same_path")
               < p.index("test_optimizer_panel_runs_and_keeps_history") for p in panels.values()), panels
    for seed in SEEDS:
        r = subprocess.run([sys.executable, "-m", "pytest", *MODULES, "-p", "randomly", f"--randomly-seed={seed}",
                            "-p", "no:cacheprovider", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]
        print(f"seed {seed}: {summary}")
        assert r.returncode == 0 and re.search(r"\d+ passed", summary) and "failed" not in summary, \
            r.stdout[-3000:] + r.stderr[-2000:]
