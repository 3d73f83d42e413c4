"""The chapters' deterministic outputs are compared, not only run: a printed line that drifts from the saved copy
(and from the prose written around it) fails. Cells marked NBVAL_CHECK_OUTPUT are compared after the sanitizers
of notebooks/nbval-sanitize.cfg; this test proves the comparison bites by running a chapter whose saved output
was changed by one word."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT


def test_marked_cells_exist_in_the_chapters():
    marked = {p.stem: sum("# NBVAL_CHECK_OUTPUT\n" in "".join(c["source"]) for c in json.loads(p.read_text())["cells"])
              for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    assert sum(marked.values()) == 18, marked  # README: "18 of them"
    assert marked["01_tflite_and_flatbuffers"] == 6 and marked["08_gpus"] == 5


def _notebook(cells):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    for i, (source, saved) in enumerate(cells, 1):
        c = nbformat.v4.new_code_cell(source, execution_count=i)  # a saved, run cell: what nbval compares with
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=saved)]
        nb.cells.append(c)
    return nbformat.writes(nb)


def test_a_drifted_output_fails_the_chapter():
    """A notebook beside the chapters (the same pytest configuration and sanitizers), with the first line of chapter
    03's refusal cell: its saved copy says 2 layers, the code prints 1, and the run fails on exactly that line; a
    timing that differs is sanitized and passes."""
    line = "QAT cannot quantize 1 layer(s): bn"
    drifted = ROOT / "notebooks" / "zz_drifted_copy.ipynb"
    drifted.write_text(_notebook([
        (f"# NBVAL_CHECK_OUTPUT\nprint({line!r})", line.replace("1 layer", "2 layer") + "\n"),
        ("# NBVAL_CHECK_OUTPUT\nprint('ran in 3 s wall')", "ran in 97 s wall\n"),
    ]))
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", str(drifted), "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    finally:
        drifted.unlink()
    assert r.returncode == 1, r.stdout[-2000:]
    assert "- QAT cannot quantize 1 layer(s): bn" in r.stdout and "+ QAT cannot quantize 2 layer(s): bn" in r.stdout
    assert "1 failed, 1 passed" in r.stdout  # the timing cell passed: sanitized
