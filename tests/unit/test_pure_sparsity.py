"""Pure units (no TensorFlow) of sparsity: pruning's selection (structures, masks, filter scores, channels, m:n).

At exact values: these are the functions `make mutation` mutates, and tests/unit is what has to notice.
"""
import numpy as np
import pandas as pd
import pytest

from homl_edge import _sandbox, micro, quantization as q, report, sparsity
from homl_edge.errors import HomlEdgeError


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
