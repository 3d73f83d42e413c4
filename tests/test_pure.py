"""The pure-Python parts of the core, at exact values: precision and mode parsing, the cache key, report
formatting, the pruning criteria's selection, the TFLM arena search and its error classification.

No TensorFlow here (the file runs in about a second): these are the functions `make mutation` mutates, and this
file is what has to notice. The same functions run on real models in test_convert, test_structured and test_micro.
"""
import numpy as np
import pandas as pd
import pytest

from homl_edge import _sandbox, micro, quantization as q, report, sparsity
from homl_edge.errors import HomlEdgeError


# ------------------------------------------------------------------------------------------ precision and modes
def test_parse_precision_pairs():
    assert q.parse_precision("dense.*=int4, conv=int8 ,classifier=float") == {
        "dense.*": "int4", "conv": "int8", "classifier": "float"}
    assert q.parse_precision("a=b=int4") == {"a=b": "int4"}  # the last '=' splits: a regex may hold one
    assert q.parse_precision("x=int8,,") == {"x": "int8"}
    assert q.parse_precision(None) is None and q.parse_precision("") is None and q.parse_precision(" , ") is None
    d = {"conv": "int4"}
    assert q.parse_precision(d) is d


def test_parse_precision_refuses_a_bare_name():
    with pytest.raises(HomlEdgeError, match=r"REGEX=PRECISION pairs .*got 'conv'"):
        q.parse_precision("dense=int4,conv")


@pytest.mark.parametrize("given, mode", [("int8", "int8"), (" INT8 ", "int8"), ("fp16", "float16"),
                                         ("drq", "dynamic"), ("dynamic-range", "dynamic"), ("none", "float32"),
                                         ("16x8", "int16x8"), ("int16", "int16x8"), ("integer", "int8-io"),
                                         ("int8_io", "int8-io"), ("full-int8", "int8"), ("float", "float32"),
                                         ("fp32", "float32"), ("int4", "int4")])
def test_normalize_mode(given, mode):
    assert q.normalize_mode(given) == mode


def test_normalize_mode_refuses_with_the_choices():
    with pytest.raises(HomlEdgeError, match=r"unknown mode 'int3': choose one of float32, dynamic, .*int4$"):
        q.normalize_mode("int3")


# -------------------------------------------------------------------------------------------------- cache key
PARTS = [("architecture", b'{"layers": []}'), ("dense/kernel(2, 2)float32", np.eye(2, dtype=np.float32).tobytes())]


def test_content_key_is_stable_and_hex():
    k = q.content_key("int8", "keras", PARTS, np.zeros((2, 3), np.float32))
    assert k == q.content_key("int8", "keras", list(PARTS), np.zeros((2, 3), np.float32))
    assert len(k) == 64 and int(k, 16) >= 0


def test_content_key_changes_with_every_piece():
    calib = np.zeros((2, 3), np.float32)
    base = q.content_key("int8", "keras", PARTS, calib)
    changed = [
        q.content_key("dynamic", "keras", PARTS, calib),
        q.content_key("int8", "recurrent-batch1", PARTS, calib),
        q.content_key("int8", "keras", PARTS[:1], calib),
        q.content_key("int8", "keras", [PARTS[0], (PARTS[1][0], np.eye(2, dtype=np.float32)[::-1].tobytes())], calib),
        q.content_key("int8", "keras", [PARTS[0], ("dense/kernel(4,)float32", PARTS[1][1])], calib),
        q.content_key("int8", "keras", PARTS, None),
        q.content_key("int8", "keras", PARTS, calib + 1),
        q.content_key("int8", "keras", PARTS, calib.reshape(3, 2)),  # same bytes, another shape
        q.content_key("int8", "keras", PARTS, calib.astype(np.float64)[:, :0]),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_content_key_parts_cannot_slide_into_each_other():
    # "ab" + "c" and "a" + "bc": the same bytes in a row, different parts
    assert q.content_key("m", "", [("x", b"ab"), ("y", b"c")]) != q.content_key("m", "", [("x", b"a"), ("y", b"bc")])


def test_key_holds_every_version(monkeypatch):
    v = q.versions()
    assert {"tensorflow", "tf-keras", "keras", "ai-edge-quantizer", "ai-edge-litert", "homl-edge",
            "conversion-code"} <= set(v)
    assert len(v["conversion-code"]) == 16
    before = q.content_key("int8", "", PARTS)
    monkeypatch.setitem(q._KEY_PARTS, "versions", {**q._KEY_PARTS["versions"], "ai-edge-quantizer": "9.9.9"})
    assert q.content_key("int8", "", PARTS) != before
    assert q._versions_key("d", "keras") != q._versions_key("d", "aeq-tflite")
    assert q._versions_key("d", "keras") != q._versions_key("e", "keras")


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOML_EDGE_CACHE", str(tmp_path))
    assert q.cache_dir() == tmp_path / "tflite"
    for off in ("off", "0", "None", "FALSE"):
        monkeypatch.setenv("HOML_EDGE_CACHE", off)
        assert q.cache_dir() is None
    monkeypatch.delenv("HOML_EDGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert q.cache_dir() == tmp_path / "xdg" / "homl-edge" / "tflite"


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


# ------------------------------------------------------------------------------------- pruning's selection
def test_parse_structure():
    assert sparsity._parse_structure(None) is None
    assert sparsity._parse_structure("2:4") == (2, 4)
    assert sparsity._parse_structure(" 1 / 8 ") == (1, 8) and sparsity._parse_structure("3x16") == (3, 16)
    for bad in ("4:4", "5:4", "2-4", "a:b", "2:4:8", ""):
        with pytest.raises(HomlEdgeError, match="structure must look like '2:4'"):
            sparsity._parse_structure(bad)


def test_masks_zero_exactly_the_lowest_scores():
    s = np.array([[0.5, 0.1], [0.3, 0.9], [0.2, 0.7]])
    m = sparsity._masks({"k": s}, 0.5)["k"]
    assert m.dtype == np.float32 and m.shape == s.shape
    assert m.tolist() == [[1, 0], [0, 1], [0, 1]]  # 0.1, 0.2 and 0.3 go
    assert sparsity._masks({"k": s}, 0.0)["k"].sum() == 6 and sparsity._masks({"k": s}, 1.0)["k"].sum() == 0
    ties = sparsity._masks({"t": np.ones(4)}, 0.5)["t"]
    assert ties.tolist() == [0, 0, 1, 1]  # a stable order: ties lose the earlier weights first
    assert sparsity._masks({"r": np.arange(8.0)}, 0.3)["r"].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]  # round(2.4)


def test_filter_scores_are_l1_per_output_channel():
    w = np.array([[[[1.0, -2.0]], [[-3.0, 0.5]]]])  # (1, 2, 1, 2): two filters
    assert sparsity.filter_scores(w).tolist() == [4.0, 2.5]
    assert sparsity.filter_scores(np.array([[1.0, -1.0, 0.0], [-2.0, 0.0, 3.0]])).tolist() == [3.0, 1.0, 3.0]


def test_channels_to_keep():
    s = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 0.8])
    assert sparsity.channels_to_keep(s, 0.5).tolist() == [1, 3, 5]
    assert sparsity.channels_to_keep(s, 0.3).tolist() == [1, 2, 3, 5]  # round(4.2) survive
    assert sparsity.channels_to_keep(s, 0.99).tolist() == [1]  # at least one channel survives
    assert sparsity.channels_to_keep(np.ones(4), 0.5).tolist() == [0, 1]  # ties keep the earlier channels
    assert sparsity.channels_to_keep(s, 0.0).tolist() == [0, 1, 2, 3, 4, 5]


def test_m_by_n_holds():
    k = np.zeros((3, 3, 8, 2))
    k[0, 0, [0, 1, 4, 6], 0] = 1
    assert sparsity.m_by_n_holds(k, 2, 4) is True
    k[0, 0, 2, 0] = 1  # three non-zeros in the block 0-3
    assert sparsity.m_by_n_holds(k, 2, 4) is False and sparsity.m_by_n_holds(k, 3, 4) is True
    assert sparsity.m_by_n_holds(np.zeros((6, 2)), 2, 4) is None  # 6 input channels: the pattern does not apply
    dense = np.zeros((4, 3))
    dense[[0, 1], 2] = 1
    dense[3, 0] = 1
    assert sparsity.m_by_n_holds(dense, 2, 4) is True and sparsity.m_by_n_holds(dense, 1, 4) is False
    # blocks run along the input channels, not the output ones
    along_out = np.zeros((4, 4))
    along_out[0, :] = 1
    assert sparsity.m_by_n_holds(along_out, 2, 4) is True


def test_flat_indices_follow_the_channels_last_layout():
    assert sparsity.flat_indices(2, 4, [1, 3]).tolist() == [1, 3, 5, 7]
    assert sparsity.flat_indices(3, 2, [0]).tolist() == [0, 2, 4]
    assert sparsity.flat_indices(1, 5, np.array([4])).tolist() == [4]


# ------------------------------------------------------------------------------------------------ arena search
class Board:
    """A stand-in for TFLM's allocator: an arena of `need` bytes or more works, a smaller one fails."""

    def __init__(self, need):
        self.need, self.tried = need, []

    def attempt(self, size):
        self.tried.append(size)
        return None if size >= self.need else f"Failed to resize buffer. Requested: {self.need}"


def test_smallest_arena_within_one_step():
    for need in (1, 16, 17, 5488, 5489, 65535, 65536):
        b = Board(need)
        found = _sandbox.smallest_arena(lambda n: b.attempt(n) is None, 65536)
        assert found >= need and found - need < 16 and found % 16 == 0 or found == 65536, (need, found)
        assert len(b.tried) <= 13  # a bisection: log2(65536 / 16) + 1 tries
    assert _sandbox.smallest_arena(lambda n: n >= 100, 1000, step=100) == 100
    assert _sandbox.smallest_arena(lambda n: n >= 5488, 8192) == 5488


def test_grow_arena():
    b = Board(300_000)
    assert _sandbox.grow_arena(b.attempt, lambda e: "resize" in e, 65536) == (1_048_576, None)
    assert b.tried == [65536, 262144, 1_048_576]
    b = Board(300_000)
    size, error = _sandbox.grow_arena(b.attempt, lambda e: "resize" in e, 65536, cap=200_000)
    assert size == 200_000 and "Requested: 300000" in error and b.tried == [65536, 200_000]
    b = Board(300_000)  # another kind of error: no growth
    assert _sandbox.grow_arena(b.attempt, lambda e: False, 1000)[0] == 1000 and b.tried == [1000]
    b = Board(300_000)  # a fixed size: cap == start
    assert _sandbox.grow_arena(b.attempt, lambda e: True, 1000, cap=1000)[0] == 1000 and b.tried == [1000]
    b = Board(10)
    assert _sandbox.grow_arena(b.attempt, lambda e: True, 64, factor=2) == (64, None) and b.tried == [64]
    b = Board(100)
    assert _sandbox.grow_arena(b.attempt, lambda e: True, 10, factor=2) == (160, None)


@pytest.mark.parametrize("log, error, kind, what", [
    ("Didn't find op for builtin opcode 'LSTM' version '4'", "", "op", "LSTM"),
    ("", "Didn't find op for builtin opcode 'GATHER'", "op", "GATHER"),
    ("Failed to resize buffer. Requested: 1000, available 10", "", "arena", None),
    ("Arena size is too small for all buffers.", "", "arena", None),
    ("Failed to allocate memory", "", "arena", None),
    ("Requested: 12", "", "arena", None),
    ("Input type: INT16 with filter type: INT8 not supported.\nNode CONV_2D (number 3) failed to prepare",
     "", "type", "Input type: INT16 with filter type: INT8 (in CONV_2D)"),
    ("Type FLOAT16 (10) is not supported", "", "type", "FLOAT16"),
    ("Type INT4 (18) not supported", "", "type", "INT4"),
    ("input->type == kTfLiteInt8 was not true.", "", "type", "input->type == kTfLiteInt8"),
    ("Unsupported data type: int64", "", "type", "int64"),
    ("Node FULLY_CONNECTED (number 1) failed to prepare", "", "other", "FULLY_CONNECTED"),
    ("something else", "boom", "other", None),
    ("", "Requested: 12", "other", None),  # the arena is only blamed from TFLM's own log
])
def test_classify_tflm_errors(log, error, kind, what):
    assert _sandbox._classify(log, error) == (kind, what)


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


# --------------------------------------------------------------------- TFLM set-up code and TF_CONFIG (pure parts)
def test_resolver_methods_and_arena_to_declare():
    from homl_edge import micro

    assert micro.resolver_method("conv_2d") == "AddConv2D" and micro.resolver_method("L2_POOL_2D") == "AddL2Pool2D"
    assert micro.resolver_method("BATCH_TO_SPACE_ND") == "AddBatchToSpaceNd"
    assert micro.resolver_method("EXPAND_DIMS") == "AddExpandDims"
    assert micro.arena_to_declare(4720) == 5904 and micro.arena_to_declare(1) == 16
    assert micro.arena_to_declare(100, margin=0.5) == 160 and micro.arena_to_declare(0) == 0


def test_tf_config_checks():
    import json

    from homl_edge import gpu

    assert json.loads(gpu.tf_config(["h:1"], 0)) == {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker",
                                                                                              "index": 0}}
    assert gpu.check_tf_config({"cluster": {"worker": ["[::1]:80"]}, "task": {"type": "worker", "index": 0}})
    for bad, message in [
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": -1}}, r"index -1 is outside"),
        ({"cluster": {"worker": ["h:0"]}, "task": {"type": "worker", "index": 0}}, "is not host:port"),
        ({"cluster": {"worker": ["h:65536"]}, "task": {"type": "worker", "index": 0}}, "is not host:port"),
        ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}, "non-empty list"),
        ({"cluster": {"chief": ["a:1", "b:1"], "worker": ["c:1"]}, "task": {"type": "worker", "index": 0}},
         "one chief"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}, "outside"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"index": 0}}, 'needs this process'),
        ([], 'needs a "cluster"'),
    ]:
        with pytest.raises(HomlEdgeError, match=message):
            gpu.check_tf_config(bad)


def test_tf_config_messages_in_full():
    import json

    from homl_edge import gpu

    ok = json.dumps({"cluster": {"chief": ["c:1"], "worker": ["w:1"], "ps": ["p:1"], "evaluator": ["e:1"]},
                     "task": {"type": "ps", "index": 0}})
    assert gpu.check_tf_config(ok)["task"] == {"type": "ps", "index": 0}  # a string is parsed; every task type known
    assert gpu.check_tf_config(json.dumps({"cluster": {"worker": ["w:1"], "evaluator": ["e:2"]},
                                           "task": {"type": "evaluator", "index": 0}}))["task"]["type"] == "evaluator"
    cases = [
        ("[1", r"^TF_CONFIG is not JSON \(Expecting ',' delimiter at character 2\)$"),
        ("{}", r'^TF_CONFIG needs a "cluster": \{"worker": \["host:port", \.\.\.\]\}$'),
        ('{"cluster": {"boss": ["a:1"]}}', r"^TF_CONFIG cluster has an unknown task type 'boss': chief, worker, ps or "
                                            r"evaluator$"),
        ('{"cluster": {"worker": "a:1"}}', r"^TF_CONFIG cluster 'worker' must be a non-empty list of 'host:port'$"),
        ('{"cluster": {"worker": ["a"]}}', r"^TF_CONFIG address 'a' is not host:port \(e\.g\. 'localhost:12345'\)$"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}}', r"^TF_CONFIG lists 'a:1' twice: every task needs its own port$"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}',
         r'^TF_CONFIG needs this process\'s "task": \{"type": "worker", "index": N\}$'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
         r"^TF_CONFIG task type 'chief' is not in the cluster \(worker\)$"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
         r"^TF_CONFIG task index 2 is outside the 2 worker address\(es\) \(0 to 1\)$"),
        ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}',
         r"^TF_CONFIG may name one chief, not several$"),
    ]
    for text, message in cases:
        with pytest.raises(HomlEdgeError, match=message):
            gpu.check_tf_config(text)
    assert json.loads(gpu.tf_config(" a:1 , b:2 ", 1, task_type="worker")) == {
        "cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert json.loads(gpu.tf_config(["a:1"], 0, chief=" c:9 "))["cluster"] == {"chief": ["c:9"], "worker": ["a:1"]}
    assert list(json.loads(gpu.tf_config(["a:1"], 0, chief="c:9"))["cluster"]) == ["chief", "worker"]


def test_smallest_arena_edges():
    found = _sandbox.smallest_arena(lambda n: n >= 5488, 65536)
    assert found == 5488 and isinstance(found, int)
    # a top that is not a multiple of the step: the bisection stops when the middle falls back onto the bottom
    assert _sandbox.smallest_arena(lambda n: n >= 33, 40) == 40
    assert _sandbox.smallest_arena(lambda n: True, 16) == 16 and _sandbox.smallest_arena(lambda n: True, 17) == 17
