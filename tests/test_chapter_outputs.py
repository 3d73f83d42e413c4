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


@pytest.mark.slow
def test_a_drifted_output_fails_the_chapter(tmp_path):
    src = ROOT / "notebooks/03_quantization_aware_training.ipynb"
    nb = json.loads(src.read_text())
    cell = next(c for c in nb["cells"] if "# NBVAL_CHECK_OUTPUT\n" in "".join(c["source"]))
    text = "".join(cell["outputs"][0]["text"])
    assert "QAT cannot quantize 1 layer(s)" in text
    cell["outputs"][0]["text"] = [text.replace("1 layer(s)", "2 layer(s)")]
    drifted = ROOT / "notebooks" / "zz_drifted_copy.ipynb"  # beside the chapters: the same paths and config
    drifted.write_text(json.dumps(nb))
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", str(drifted), "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    finally:
        drifted.unlink()
    assert r.returncode == 1, r.stdout[-2000:]
    assert "- QAT cannot quantize 1 layer(s)" in r.stdout and "+ QAT cannot quantize 2 layer(s)" in r.stdout
    assert "1 failed" in r.stdout
