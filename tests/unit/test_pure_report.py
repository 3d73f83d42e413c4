"""Pure units (no TensorFlow) of report and _table: value formats, tables, choose; the pins found by the mutation run.

At exact values: these are the functions `make mutation` mutates, and tests/unit is what has to notice.
"""
import numpy as np
import pandas as pd
import pytest

from homl_edge import _sandbox, micro, quantization as q, report, sparsity
from homl_edge.errors import HomlEdgeError


# ---------------------------------------------------------------------------------------------- report formats
@pytest.mark.parametrize("column, value, text", [
    ("size_bytes", 999, "999 B"), ("size_bytes", 1000, "1.0 KB"), ("gzip_bytes", 25_432, "25.4 KB"),
    ("size_bytes", 999_999, "1000.0 KB"), ("size_bytes", 1_000_000, "1.00 MB"), ("arena_tried", 65536, "65.5 KB"),
    ("weights_bytes_", 2_500_000, "2.50 MB"),
    ("model_flash_%", 12.345, "12.3%"), ("accuracy", 0.97321, "97.32%"), ("argmax_agreement", 1.0, "100.00%"),
    ("sparsity", 0.8, "80.00%"), ("identical", 0.5, "50.00%"),
    ("accuracy_delta", -0.0123, "-1.23 pt"), ("drop", 0.02, "+2.00 pt"), ("accuracy_delta", 0.0, "+0.00 pt"),
    ("size_ratio", 3.8234, "3.82x"), ("speedup", 0.5, "0.50x"), ("latency_median_ms", 0.012345, "12.3 µs"), ("latency_median_ms", 1.0, "1 ms"),
    ("latency_p90_ms", 123.456, "123 ms"), ("snr_db", 41.26, "41.3 dB"), ("ms_per_sample", 0.0203, "20.3 µs"),
    ("params", 1234567, "1,234,567"), ("params", 12.0, "12"), ("score", 0.123456, "0.1235"),
    ("note", "kept", "kept"), ("fits", True, "True"), ("fits", np.bool_(False), "False"), ("note", None, ""),
    ("speedup", float("inf"), "inf"), ("speedup", float("-inf"), "-inf"), ("speedup", float("nan"), ""),
    ("shape", (1, 2), "(1, 2)"),
])
def test_format_value(column, value, text):
    assert report.format_value(column, value) == text


def test_table_html_has_units_and_no_empty_header_row():
    t = report.Table({"layer": ["conv", "dense_1"], "size_bytes": [2048, 10], "sparsity": [0.5, 0.0],
                      "note": ["a<b", ""]}).set_index("layer")
    html = t._repr_html_()
    assert html.startswith("<table class='homl-edge-table'><thead style='white-space:nowrap'><tr><th>layer</th>"
                           "<th>size bytes</th>")  # headers on one line: a panel's narrow tab wrapped them word by word
    assert html.count("<tr>") == 3 and "<th></th>" not in html
    assert "<td style='text-align:right'>2.0 KB</td>" in html and "<td style='text-align:right'>50.00%</td>" in html
    assert "<td style='text-align:left'>a&lt;b</td>" in html and "<td style='text-align:left'>dense_1</td>" in html
    plain = report.Table({"a": [1]})._repr_html_()  # a RangeIndex is not shown as a column
    assert "<th>index</th>" not in plain and plain.count("<th>") == 1
    assert type(t.to_frame()) is pd.DataFrame and type(t.head(1)) is report.Table


ROWS = [{"variant": "float32", "kind": "tflite float32", "size_bytes": 1000, "gzip_bytes": 900, "accuracy": 0.95,
         "latency_median_ms": 2.0, "latency_p90_ms": 2.5},
        {"variant": "int8", "kind": "tflite int8", "size_bytes": 250, "gzip_bytes": 200, "accuracy": 0.94,
         "latency_median_ms": 1.0, "latency_p90_ms": 1.5},
        {"variant": "int4", "kind": "tflite int4", "size_bytes": 125, "gzip_bytes": 120, "accuracy": 0.90,
         "latency_median_ms": 4.0, "latency_p90_ms": 5.0}]


def test_table_from_rows_ratios_against_the_first():
    t = report.table_from_rows(ROWS)
    assert list(t.columns) == [c for c in report.COLUMNS[1:] if c not in ("macs", "activation_bytes",
                                                                          "cold_start_ms")]
    assert list(t.index) == ["float32", "int8", "int4"]
    with_profile = report.table_from_rows([{**r, "macs": 10, "activation_bytes": 4, "cold_start_ms": 1.0}
                                           for r in ROWS])
    assert list(with_profile.columns) == report.COLUMNS[1:]
    assert t.size_ratio.tolist() == [1.0, 4.0, 8.0]
    assert t.gzip_ratio.tolist() == [1.0, 4.5, 7.5]
    assert t.speedup.tolist() == [1.0, 2.0, 0.5]
    assert t.accuracy_delta.round(6).tolist() == [0.0, -0.01, -0.05]


def test_choose_meets_every_budget():
    t = report.table_from_rows(ROWS)
    assert report.choose(t) == "int4"
    assert report.choose(t, max_accuracy_drop=0.01) == "int8"  # exactly one point is allowed
    assert report.choose(t, max_accuracy_drop=0.0099) == "float32"
    assert report.choose(t, max_latency_ms=2.0) == "int8"
    assert report.choose(t, max_bytes=250, max_latency_ms=1.0) == "int8"
    assert report.choose(t, by="latency_median_ms") == "int8"
    assert report.choose(t, max_bytes=125) == "int4"
    assert report.choose(t, max_gzip_bytes=200, by="accuracy") == "int4"  # the lowest accuracy first: by= sorts
    assert report.choose(t, max_gzip_bytes=200, max_accuracy_drop=0.01) == "int8"
    assert report.choose(t, max_gzip_bytes=199) == "int4"
    with pytest.raises(HomlEdgeError, match="no variant meets every budget"):
        report.choose(t, max_gzip_bytes=119)
    with pytest.raises(HomlEdgeError, match="no variant meets every budget"):
        report.choose(t, max_bytes=124)
    with pytest.raises(HomlEdgeError, match="no variant meets every budget"):
        report.choose(t, max_bytes=1000, max_latency_ms=0.5)


def test_fits_on_boards():
    t = micro.fits_on(30 * 1024, 2 * 1024)
    uno = t.loc["Arduino Uno R3 (ATmega328P)"]
    assert uno.fits and uno.flash_KiB == 32 and uno.ram_KiB == 2
    assert uno["model_flash_%"] == pytest.approx(100 * 30 / 32) and uno["arena_ram_%"] == pytest.approx(100.0)
    t = micro.fits_on(30 * 1024, 2 * 1024 + 1, boards={"tiny": (32, 2), "flash": (29, 64)})
    assert t.fits.tolist() == [False, False] and list(t.index) == ["tiny", "flash"]
    assert micro.fits_on(29 * 1024, 3000, boards={"b": (29, 3)}).fits.tolist() == [True]


def test_human_bytes_boundaries():
    assert report.human_bytes(0) == "0 B" and report.human_bytes(999.4) == "999 B"
    assert report.human_bytes(1500) == "1.5 KB" and report.human_bytes(2_345_678) == "2.35 MB"


# ------------------------------------------------------------------- pins found by the mutation run (`make mutation`)
def test_mutation_pins(monkeypatch, tmp_path):
    import hashlib
    from importlib import metadata

    from homl_edge._version import __version__

    assert q.parse_precision("a=int8,,b=int4") == {"a": "int8", "b": "int4"}  # an empty pair is skipped, not the end
    # the key's derivation: sha256 over "mode|extra|" and the parts, then the versions under the kind "keras"
    assert q.content_key("m", "e", []) == q._versions_key(hashlib.sha256(b"m|e|").hexdigest(), "keras")
    monkeypatch.setattr(q, "_KEY_PARTS", {})  # computed afresh, not from an earlier call's memo
    v = q.versions()
    def installed(dist):  # ai-edge-quantizer is in the lock but not in .venv-current (litert-quantizer is both)
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    for dist in ("tensorflow", "tf-keras", "keras", "litert-quantizer", "ai-edge-quantizer", "ai-edge-litert"):
        assert v[dist] == installed(dist)
    assert v["tensorflow"] is not None and v["litert-quantizer"] is not None
    assert v["homl-edge"] == __version__ and q.versions() is not v and q.versions() == v
    monkeypatch.delenv("HOML_EDGE_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert q.cache_dir() == tmp_path / ".cache" / "homl-edge" / "tflite"
    with pytest.raises(HomlEdgeError, match=r"^no variant meets every budget: relax one, or try another technique$"):
        report.choose(report.table_from_rows(ROWS), max_bytes=1)
    assert report.human_bytes(1_995_001) == "2.00 MB"
    assert report.format_value("speedup", 0.5) == "0.50x" and report.format_value("x", float("inf")) == "inf"
    assert report.format_value("x", float("-inf")) == "-inf"
    ties = sparsity._masks({"t": np.ones(100)}, 0.5)["t"]
    assert ties[:50].sum() == 0 and ties[50:].sum() == 50  # stable on long rows too (quicksort is not)
    assert sparsity.channels_to_keep(np.ones(100), 0.5).tolist() == list(range(50))
    assert sparsity.filter_scores(np.ones((2, 3, 5))).tolist() == [6.0] * 5
    k = np.zeros((4, 1))
    k[:3, 0] = 1
    assert sparsity.m_by_n_holds(k) is False  # the default is 2:4


def test_table_html_exactly():
    t = report.Table({"a": [1, 2], "note": ["x", "y"]})
    assert t._repr_html_() == (
        "<table class='homl-edge-table'><thead style='white-space:nowrap'><tr><th>a</th><th>note</th></tr></thead>"
        "<tbody>"
        "<tr><td style='text-align:right'>1</td><td style='text-align:left'>x</td></tr>"
        "<tr><td style='text-align:right'>2</td><td style='text-align:left'>y</td></tr></tbody></table>")
    named = report.Table({"a": [1]})
    named.index.name = "row"  # a named RangeIndex is shown; so is an unnamed index of labels
    assert "<th>row</th>" in named._repr_html_()
    assert "<th>index</th>" in report.Table({"a": [1]}, index=["k"])._repr_html_()
    # a latency's unit is in its cells ("20.3 µs"), not also in its heading; the numbers stay as they are
    from homl_edge._table import header

    t = report.Table({"latency_median_ms": [0.0203], "ms_per_sample": [2.5], "step_ms": [1.0]})
    assert [header(c) for c in t.columns] == ["latency median", "time per sample", "step"]
    html = t._repr_html_()
    assert "<th>latency median</th>" in html and "<td style='text-align:right'>20.3 µs</td>" in html
    assert t.latency_median_ms.iloc[0] == 0.0203
