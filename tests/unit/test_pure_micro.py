"""Pure units (no TensorFlow) of micro and _sandbox: the TFLM arena search, its error classification, the set-up code.

At exact values: these are the functions `make mutation` mutates, and tests/unit is what has to notice.
"""
import numpy as np
import pandas as pd
import pytest

from homl_edge import _sandbox, micro, quantization as q, report, sparsity
from homl_edge.errors import HomlEdgeError


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


# --------------------------------------------------------------------- TFLM set-up code and TF_CONFIG (pure parts)
def test_resolver_methods_and_arena_to_declare():
    from homl_edge import micro

    assert micro.resolver_method("conv_2d") == "AddConv2D" and micro.resolver_method("L2_POOL_2D") == "AddL2Pool2D"
    assert micro.resolver_method("BATCH_TO_SPACE_ND") == "AddBatchToSpaceNd"
    assert micro.resolver_method("EXPAND_DIMS") == "AddExpandDims"
    assert micro.arena_to_declare(4720) == 5904 and micro.arena_to_declare(1) == 16
    assert micro.arena_to_declare(100, margin=0.5) == 160 and micro.arena_to_declare(0) == 0


def test_smallest_arena_edges():
    found = _sandbox.smallest_arena(lambda n: n >= 5488, 65536)
    assert found == 5488 and isinstance(found, int)
    # a top that is not a multiple of the step: the bisection stops when the middle falls back onto the bottom
    assert _sandbox.smallest_arena(lambda n: n >= 33, 40) == 40
    assert _sandbox.smallest_arena(lambda n: True, 16) == 16 and _sandbox.smallest_arena(lambda n: True, 17) == 17
