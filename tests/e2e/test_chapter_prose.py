"""Every measured figure a chapter's prose states is one the chapter shows: a number with a unit (x, %, points,
bytes, KB, MB, ms, µs, dB...) in a markdown cell must appear, at the precision the prose gives it, in a saved output
of that chapter or in one of its asserts. A figure quoted from elsewhere names its source on the same line (see
SOURCES). Nothing is executed: the saved .ipynb files are read, so this takes well under a second."""
import json
import re
import pytest

from conftest import ROOT

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# A line that quotes a figure from outside the chapter says where it comes from, in parentheses or after "in",
# e.g. "(TensorFlow docs)", "(Hands-On ML, ch. 19)", "(the board's datasheet)", "(measured on ..., issue 24)".
SOURCES = re.compile(r"docs\b|documentation|Hands-On|datasheet|\bissue \d+|tensorflow#\d+|published|"
                     r"spec(ification)?\b|NVIDIA|Arm's|Binder gives|Google's blog|the book", re.I)

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNIT = (r"x(?![\dA-Za-z])|×|%|percent|points?\b|bytes?\b|B\b|KB\b|KiB\b|kB\b|MB\b|MiB\b|GB\b|GiB\b|ms\b|µs\b|us\b|"
         r"dB\b|s\b|seconds?\b|minutes?\b|MACs\b|parameters\b|weights\b")
# "8x8", "32 x 32", "6x6x32": dimensions, not measurements
_DIMS = re.compile(r"\d+\s*[x×]\s*\d+")
FIGURE = re.compile(rf"(?<![\w.#/-])(?:({_NUM})\s*(?:[-–]|to)\s*)?({_NUM})\s*({_UNIT})")
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?")

# how a printed number may be written for a figure in each unit: scale factors from the printed value
_SCALES = {"x": (1,), "×": (1,), "%": (1, 100), "percent": (1, 100), "point": (1, 100),
           "byte": (1,), "B": (1,), "KB": (1, 1e-3, 1 / 1024), "KiB": (1, 1 / 1024, 1e-3), "kB": (1, 1e-3, 1 / 1024),
           "MB": (1, 1e-6, 1 / 2**20), "MiB": (1, 1 / 2**20), "GB": (1, 1e-3, 1 / 1024, 1e-9, 1 / 2**30),
           "GiB": (1, 1 / 1024, 1 / 2**30), "ms": (1, 1e3, 1e-3), "µs": (1, 1e3, 1e-3), "us": (1, 1e3, 1e-3),
           "dB": (1,), "s": (1,), "second": (1,), "minute": (1,), "MAC": (1,), "parameter": (1,), "weight": (1,)}


def _unit(u):
    u = u.rstrip()
    return u[:-1] if u.endswith("s") and u not in ("ms", "µs", "us", "s", "MACs") else ("MAC" if u == "MACs" else u)


def _outputs_and_asserts(nb):
    """The text a reader sees printed, and the asserts that hold a value: the evidence prose may cite."""
    parts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        parts += [line for line in source.splitlines() if "assert" in line]
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append("".join(out["text"]))
            for kind in ("text/plain", "text/html", "text/markdown"):
                if kind in out.get("data", {}):
                    parts.append("".join(out["data"][kind]))
    return "\n".join(parts)


def _values(text):
    vals, ratios = set(), set()
    for m in NUMBER.finditer(text):
        v = float(m.group().replace(",", ""))
        vals.add(v)
        if "." in m.group() or re.match(r"\s*(x|%)", text[m.end():m.end() + 2]):
            ratios.add(v)
    return {"all": vals, "ratios": ratios}


def _shown(figure, unit, values):
    decimals = len(figure.split(".")[1]) if "." in figure else 0
    target = float(figure.replace(",", ""))
    if unit in ("x", "×", "%", "percent", "point"):   # a ratio is printed as a ratio ("3.82x", 3.818316, 96.67%),
        values = values["ratios"]                      # never as a count or an index
    else:
        values = values["all"]
    for v in values:
        for s in _SCALES[unit]:
            w = abs(v) * s
            if decimals and abs(round(w, decimals) - target) < 1e-9:
                return True
            if not decimals and abs(w - target) <= max(0.05 * target, 0.5 if target >= 10 else 0):
                return True   # "about 4x" is 3.8x to 4.2x; "80%" is 76% to 84%; "42,408 bytes" is exact
    return False


def prose_lines(nb):
    """(cell index, line) of every markdown line outside code fences, inline code removed."""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        fenced = False
        for line in "".join(cell["source"]).splitlines():
            if line.strip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                yield i, re.sub(r"`[^`]*`", "", line)


def unsupported_figures(nb):
    """Every figure of the prose that neither an output nor an assert of the chapter shows, nor a source backs."""
    values = _values(_outputs_and_asserts(nb))
    missing = []
    for i, line in prose_lines(nb):
        if SOURCES.search(line):
            continue
        text = _DIMS.sub(" ", line)
        for m in FIGURE.finditer(text):
            unit = _unit(m.group(3))
            for figure in filter(None, (m.group(1), m.group(2))):
                if not _shown(figure, unit, values):
                    missing.append(f"[{i}] {figure} {m.group(3).strip()}: {line.strip()[:140]}")
    return missing


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_in_the_prose_is_one_the_chapter_shows(path):
    missing = unsupported_figures(json.loads(path.read_text()))
    assert not missing, f"{path.name}: figures no output or assert shows:\n" + "\n".join(missing)


def test_a_doctored_chapter_fails():
    """The check bites: a copy of chapter 00 with one sentence added that states figures its cells never print
    (5.31x smaller, 12.5 ms) fails on exactly those two figures; the saved chapter passes; the same kind of figure
    with its source named on the line passes."""
    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    assert unsupported_figures(nb) == []
    first_md = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown")
    nb["cells"][first_md]["source"].append("\nQuantized, the model is 5.31x smaller and takes 12.5 ms.\n")
    doctored = unsupported_figures(nb)
    assert [d.split(":")[0] for d in doctored] == [f"[{first_md}] 5.31 x", f"[{first_md}] 12.5 ms"], doctored
    nb["cells"][first_md]["source"][-1] = "\nQuantized, a model is up to 5.31x smaller (TensorFlow docs).\n"
    assert unsupported_figures(nb) == []
    # a figure that the chapter prints at another precision or value is caught too: 3.82x printed, 3.9x claimed
    nb["cells"][first_md]["source"][-1] = "\nint8 is 3.9x smaller here.\n"
    assert [d.split(":")[0] for d in unsupported_figures(nb)] == [f"[{first_md}] 3.9 x"]
