"""No test depends on another having run first: pytest-randomly shuffles the panel tests (which share the trained
model and the conversion cache), and the shuffled order passes.

One seed, chosen because its order is the one that used to fail (the button test before the history test; seeds 1
and 2 both give it): a second seed cost a second run of the panel tests (about 45 s of CPU) for an order that shows
nothing this one does not.

pytest-randomly is off in the normal run (`-p no:randomly` in pyproject.toml): it would shuffle the cells of the
chapter notebooks too, which must run top to bottom. Here it is switched back on for the unit-test modules only. In a session that runs this test, those modules are not
run a second time in the usual order (tests/conftest.py): this run is their proof.
"""
import re
import subprocess
import sys

import pytest

from conftest import ROOT, SHUFFLED as MODULES

SEED = 2


def _run(seed):
    """One shuffled run, verbose: its lines give the order the tests ran in, and its summary the outcome."""
    r = subprocess.run([sys.executable, "-m", "pytest", *MODULES, "-p", "randomly", f"--randomly-seed={seed}",
                        "-p", "no:cacheprovider", "-v"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    order = [m.group(1) for m in re.finditer(r"^(tests/\S+::\S+) (?:PASSED|FAILED|ERROR)", r.stdout, re.M)]
    return r, order


@pytest.mark.slow
def test_panel_tests_pass_in_a_shuffled_order():
    r, order = _run(SEED)
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]
    print(f"seed {SEED}: {summary}")
    assert r.returncode == 0 and re.search(r"\d+ passed", summary) and "failed" not in summary, \
        r.stdout[-3000:] + r.stderr[-2000:]
    # every test it shuffles ran and passed, none skipped: in the main suite this run is their only run
    ran = len(re.findall(r"^tests/\S+::.* PASSED", r.stdout, re.M))   # ids may hold spaces ("[empty generator-...]")
    assert "skipped" not in summary and int(re.search(r"(\d+) passed", summary).group(1)) == ran >= 98, summary
    panels = [t.split("::")[1].split("[")[0] for t in order if "test_panels" in t]
    written = re.findall(r"^def (test_\w+)", (ROOT / MODULES[0]).read_text(), re.M)
    assert set(panels) == set(written) and list(dict.fromkeys(panels)) != written, panels  # all ran, shuffled
    # the order that used to fail: the button test ran first and left its runs in a shared panel
    assert panels.index("test_optimizer_panel_buttons_call_the_same_path") \
        < panels.index("test_optimizer_panel_runs_and_keeps_history"), panels
