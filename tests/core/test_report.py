"""compare() and plot_tradeoff()."""
import re

import numpy as np
import pytest

import homl_edge as he


def test_compare_table_and_ratios(trained, digits, lite_f32, lite_int8io):
    (_, _), (xt, yt) = digits
    t = he.compare({"float32": lite_f32, "int8-io": lite_int8io, "keras": trained}, xt, yt, runs=30)
    assert list(t.index) == ["float32", "int8-io", "keras"]
    assert t.loc["float32", "size_ratio"] == 1.0
    assert t.loc["int8-io", "size_ratio"] == pytest.approx(lite_f32.size / lite_int8io.size)
    assert t.loc["int8-io", "gzip_bytes"] == lite_int8io.gzip_size
    assert t.loc["keras", "kind"] == "keras" and t.loc["keras", "size_bytes"] > lite_int8io.size
    assert (t.accuracy > 0.9).all()
    assert t.loc["int8-io", "accuracy_delta"] == pytest.approx(t.loc["int8-io", "accuracy"] - t.loc["float32", "accuracy"])
    assert (t.latency_median_ms > 0).all() and (t.latency_p90_ms >= t.latency_median_ms).all()
    # compute and RAM, counted from the graph: conv 6*6*32*3*3 + dense 1152*128 + classifier 128*10
    assert t.loc["float32", "macs"] == t.loc["int8-io", "macs"] == 6 * 6 * 32 * 9 + 1152 * 128 + 128 * 10
    assert t.loc["float32", "activation_bytes"] == 4 * t.loc["int8-io", "activation_bytes"]  # float32 vs int8
    assert np.isnan(t.loc["keras", "macs"])  # not counted for a Keras model: compare its .tflite


def test_plot_tradeoff(trained, digits, lite_f32, lite_int8io, artifacts):
    (_, _), (xt, yt) = digits
    t = he.compare({"float32": lite_f32, "int8-io": lite_int8io}, xt, yt, runs=20)
    fig = he.plot_tradeoff(t)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "accuracy" in ax.get_ylabel()
    assert len(ax.texts) == 2
    fig.canvas.draw()  # tick labels are made at drawing time
    lo, hi = ax.get_xlim()
    shown = [(t.get_position()[0], t.get_text()) for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)
             if t.get_text() and lo <= t.get_position()[0] <= hi]
    # sizes in KiB on the log axis ("40 KiB", "100 KiB"), each at its own value; not powers of ten ("2x10^2" before)
    assert len(shown) >= 2, (lo, hi, shown)
    assert all(re.fullmatch(r"[\d,.]+ KiB", s) and float(s.split()[0].replace(",", "")) == x for x, s in shown), shown
    fig.savefig(artifacts / "tradeoff.png")


def test_compare_rounds_keep_each_variants_best(digits, lite_f32, lite_int8io):
    (_, _), (xt, yt) = digits
    one = he.compare({"float32": lite_f32, "int8-io": lite_int8io}, xt[:50], yt[:50], runs=30)
    best = he.compare({"float32": lite_f32, "int8-io": lite_int8io}, xt[:50], yt[:50], runs=30, rounds=4)
    assert list(best.index) == ["float32", "int8-io"] and (best.accuracy == one.accuracy).all()
    assert (best.latency_median_ms > 0).all() and (best.latency_p90_ms >= best.latency_median_ms).all()
    with pytest.raises(he.HomlEdgeError, match="rounds must be at least 1"):
        he.compare({"float32": lite_f32}, xt, yt, rounds=0)


def test_compare_errors(digits, lite_f32):
    (_, _), (xt, yt) = digits
    with pytest.raises(he.HomlEdgeError, match="dict"):
        he.compare([lite_f32], xt, yt)
    with pytest.raises(he.HomlEdgeError, match="360 samples but y has 3"):
        he.compare({"a": lite_f32}, xt, yt[:3])


def test_choose_respects_every_budget(digits, lite_f32, lite_int8io):
    (_, _), (xt, yt) = digits
    t = he.compare({"float32": lite_f32, "int8-io": lite_int8io}, xt, yt, runs=20)
    assert he.report.choose(t, max_accuracy_drop=0.02) == "int8-io"
    assert he.report.choose(t, max_bytes=lite_f32.size, by="latency_median_ms") in ("float32", "int8-io")
    with pytest.raises(he.HomlEdgeError, match="no variant meets every budget"):
        he.report.choose(t, max_bytes=1000)


def test_choose_refuses_anything_but_a_table_of_variants_in_one_line(trained, digits, lite_f32):
    """report.choose given one variant (optimize()'s result, a Measurement) or a table without the budget's column:
    one line naming he.compare (it was an AttributeError)."""
    (_, _), (xt, yt) = digits
    o = he.optimize(trained, "quantize", mode="float32", progress=False)
    m = he.report.measure(lite_f32, xt[:50], yt[:50], latency=False)
    for bad, says in [(o, "got Optimized"), (m, "got Measurement")]:
        with pytest.raises(he.HomlEdgeError, match=r"choose takes a table of variants, one row each, from "
                                                   r"he\.compare\(.*" + says) as e:
            he.report.choose(bad)
        assert "\n" not in str(e.value)
    t = he.compare({"float32": lite_f32}, xt[:50], yt[:50], runs=5)
    with pytest.raises(he.HomlEdgeError, match="choose: the table lacks energy_mj: make it with he.compare"):
        he.report.choose(t, by="energy_mj")
    assert he.report.choose(t) == "float32"
