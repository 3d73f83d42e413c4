"""Pure units (no TensorFlow) of the conversion cache (_cache): its key and its folder.

At exact values: these are the functions `make mutation` mutates, and tests/unit is what has to notice.
"""
import numpy as np
import pandas as pd
import pytest

from homl_edge import _sandbox, micro, quantization as q, report, sparsity
from homl_edge.errors import HomlEdgeError


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
