"""Pure units (no TensorFlow) of quantization (and _modes, _quantizer): precision and mode parsing.

At exact values: these are the functions `make mutation` mutates, and tests/unit is what has to notice.
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
