"""Speed you can trust: benchmark() times real inputs (never zeros), compare() interleaves its rounds, throughput()
resizes only a free batch and adds worker processes; autoquantize(objective="latency") picks the fastest variant
within the budget, never one slower than float32."""
import numpy as np
import pytest

import homl_edge as he
from homl_edge.lite import LiteModel, _Runner, benchmark_many, random_inputs


def _fed_inputs(lite, x=None, invokes=6):
    """What the benchmark's interpreter really holds at each invoke (read back from LiteRT)."""
    arrays, source, note = lite.benchmark_inputs(x)
    runner = _Runner(lite, arrays, None, 1).start()
    idx = lite.input_details[0]["index"]
    seen = []
    for _ in range(invokes):
        runner.run(1)
        seen.append(runner.interp.get_tensor(idx).copy())
    return seen, source, note


def test_benchmark_feeds_real_inputs_never_zeros(lite_f32, lite_int8io, digits):
    (x, _), (xt, yt) = digits
    fresh = LiteModel(lite_f32.content, name="fresh", _trusted=True)  # nothing kept: random, said so
    seen, source, note = _fed_inputs(fresh)
    assert source.startswith("random normal") and "no real inputs" in note
    assert all(np.abs(s).sum() > 0 for s in seen) and len({s.tobytes() for s in seen}) == len(seen)
    # the calibration data int8 was made with: integer inputs, quantized, different at every invoke
    seen, source, note = _fed_inputs(lite_int8io)
    assert source == "calibration data" and note == ""
    assert seen[0].dtype == np.int8 and len({s.tobytes() for s in seen}) == len(seen)
    q = he.lite.quantize_array(x[1:len(seen) + 1], lite_int8io.input_details[0])  # sample 0 went to the cold start
    assert all(np.array_equal(s[0], q[i]) for i, s in enumerate(seen))  # the very samples, in order
    # given samples win; evaluate() keeps its data for a model that had none
    seen, source, _ = _fed_inputs(fresh, xt[5:9])
    assert source == "given samples" and np.array_equal(seen[0][0], xt[6]) and np.array_equal(seen[3][0], xt[5])
    fresh.evaluate(xt, yt)
    assert fresh.benchmark_inputs()[1] == "evaluation data"


def test_int4_and_mixes_keep_the_data_given_for_their_latency(trained, digits):
    """int4 needs no calibration, but data= given is what its latency is timed on (it was a random sample)."""
    (x, _), _ = digits
    for lite in (he.quantize(trained, "int4", data=x[:40]), he.quantize(trained, "int4", precision={".*": "int8"},
                                                                        data=x[:40])):
        inputs, source = lite.benchmark_inputs()[:2]
        assert source == "calibration data" and np.array_equal(inputs[0], x[:len(inputs[0])]), (lite.name, source)
    assert he.quantize(trained, "int4").benchmark_inputs()[1].startswith("random normal")


def test_benchmark_result_keeps_old_keys_adds_method_and_prints_microseconds(lite_int8io, digits):
    (_, _), (xt, _) = digits
    b = lite_int8io.benchmark(xt, runs=30, warmup=5, rounds=3)
    assert {"median_ms", "p90_ms", "mean_ms", "runs", "threads"} <= set(b)
    assert b["rounds"] == 3 and len(b["round_medians_ms"]) == 3 and b["median_ms"] == min(b["round_medians_ms"])
    assert b["spread_ms"] == pytest.approx(max(b["round_medians_ms"]) - min(b["round_medians_ms"]))
    assert b["input"] == "given samples" and b["samples"] == 32 and b["warmup"] == 5 and b["batch"] == 1
    assert b["cold_start_ms"] > b["median_ms"] > 0
    assert "µs" in repr(b) and "best of 3 rounds" in repr(b)  # a digits invoke takes microseconds
    assert lite_int8io.benchmark(1, runs=5, warmup=1)["threads"] == 1  # the old benchmark(threads) still works
    assert he.report.format_value("latency_median_ms", 0.0687) == "68.7 µs"


def test_random_inputs_match_dtype_and_quantization():
    f, q, ids = ({"dtype": np.float32, "shape_signature": [-1, 4], "shape": [1, 4]},
                 {"dtype": np.int8, "shape_signature": [-1, 4], "shape": [1, 4], "quantization": (0.1, -3)},
                 {"dtype": np.int32, "shape_signature": [-1, 4], "shape": [1, 4], "quantization": (0.0, 0)})
    a, b, c = random_inputs([f, q, ids], 500, seed=1)
    assert a.dtype == np.float32 and abs(a.mean()) < 0.1 and 0.9 < a.std() < 1.1
    qa = he.lite.quantize_array(b, q)  # spread over int8's range, centred, rarely clipped
    assert -10 < qa.mean() < 10 and (np.abs(qa.astype(int)) >= 127).mean() < 0.01 and qa.std() > 30
    assert c.dtype == np.int32 and c.min() >= 0 and c.max() > 0
    assert np.array_equal(random_inputs([f], 3, seed=1)[0], random_inputs([f], 3, seed=1)[0])


def test_benchmark_says_in_one_line_when_its_inputs_do_not_fit_the_model():
    # token ids into an Embedding: the seeded random normal sample holds negative ids, which LiteRT's GATHER
    # refuses with a RuntimeError (an int4 file made from a Keras model keeps no samples, so make bench met it)
    k = he._keras.legacy()
    k.utils.set_random_seed(0)
    m = k.Sequential([k.Input((40,)), k.layers.Embedding(20, 4), k.layers.Flatten(),
                      k.layers.Dense(3, activation="softmax")])
    lite = he.quantize(m, "float32", cache=False)
    for call in (lambda: lite.benchmark(runs=3, warmup=0),
                 lambda: lite.throughput(batch_sizes=(1,), threads=(1,), seconds=0.01)):
        with pytest.raises(he.HomlEdgeError, match=r"could not run .*GATHER.*pass x=") as e:
            call()
        assert "\n" not in str(e.value)
    ids = np.random.default_rng(0).integers(0, 20, (8, 40)).astype(np.float32)
    assert lite.benchmark(ids, runs=3, warmup=0)["median_ms"] > 0  # real ids run


def test_compare_times_every_tflite_on_real_inputs_in_interleaved_rounds(trained, lite_f32, lite_int8io, digits):
    (_, _), (xt, yt) = digits
    t = he.compare({"float32": lite_f32, "int8": lite_int8io}, xt, yt, runs=30, rounds=2)
    assert "interleaved" in t.attrs["latency"] and "test inputs" in t.attrs["latency"]
    assert (t.cold_start_ms > t.latency_median_ms).all()
    assert "µs" in t._repr_html_()
    many = benchmark_many({"a": lite_f32, "b": lite_int8io}, xt, runs=20, rounds=2, warmup=2)
    assert set(many) == {"a", "b"} and all(m["rounds"] == 2 and m["input"] == "given samples" for m in many.values())


def _fixed_batch_model():
    import keras

    m = keras.Sequential([keras.Input((8, 8, 1), batch_size=1), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")], name="fixed1")
    return he.quantize(m, "float32")


def test_throughput_resizes_only_a_free_batch_and_runs_worker_processes(lite_f32, digits):
    (_, _), (xt, _) = digits
    t = lite_f32.throughput(xt, batch_sizes=(1, 32), threads=(1,), processes=(1, 2), seconds=0.2)
    assert list(t.index.names) == ["batch", "threads", "processes"] and len(t) == 4
    assert (t.samples_per_s > 0).all() and t.note.eq("").all()
    one, many = t.loc[(1, 1, 1)], t.loc[(32, 1, 1)]
    assert many.latency_ms > 2 * one.latency_ms  # 32 samples per invoke: the tensor was really resized
    assert many.ms_per_sample == pytest.approx(many.latency_ms / 32)
    fixed = _fixed_batch_model()
    assert fixed.fixed_batch == 1
    ft = fixed.throughput(xt, batch_sizes=(1, 8), threads=(1,), seconds=0.1)
    assert ft.loc[(1, 1, 1)].samples_per_s > 0
    assert np.isnan(ft.loc[(8, 1, 1)].samples_per_s) and "fixed to 1" in ft.loc[(8, 1, 1)].note
    with pytest.raises(he.HomlEdgeError, match="positive integers"):
        lite_f32.throughput(xt, batch_sizes=(0,))


def test_op_times_splits_one_invoke_by_op_type(lite_int8io, digits):
    (_, _), (xt, _) = digits
    t = lite_int8io.op_times(xt, runs=20, rounds=2)
    assert dict(t.ops) == dict(lite_int8io.builtin_ops())  # every op of the file, counted once
    assert t.share.sum() == pytest.approx(1.0) and (t.time_ms >= 0).all()
    assert t.time_ms.is_monotonic_decreasing and t.attrs["input"] == "given samples" and t.attrs["total_ms"] > 0


def test_autoquantize_latency_picks_the_fastest_within_budget_never_slower_than_float32(trained, digits):
    from homl_edge.precision import MIN_SPEEDUP

    (x, _), (xt, yt) = digits
    r = he.autoquantize(trained, x[:200], (xt, yt), max_drop=0.01, objective="latency", rounds=3, runs=50,
                        progress=False)
    t = r.tried
    assert {"float32", "float16", "dynamic", "int8", "int4 block32"} <= set(t.index)
    assert {"size_bytes", "accuracy", "latency_median_ms", "speedup", "within_budget"} <= set(t.columns)
    assert t.chosen.sum() == 1 and r.objective == "latency"
    chosen = t[t.chosen].iloc[0]
    within = t[t.within_budget]
    assert chosen.within_budget and r.lite.size == chosen.size_bytes
    if chosen.name == "float32":
        assert (within.drop(index="float32").speedup < MIN_SPEEDUP).all() and "float32 is returned" in r.notes[0]
    else:
        assert chosen.latency_median_ms == within.latency_median_ms.min() and chosen.speedup >= MIN_SPEEDUP
        assert chosen.latency_median_ms < t.loc["float32"].latency_median_ms
    assert "interleaved" in t.attrs["latency"] and "fastest within the budget" in r._repr_html_()
    with pytest.raises(he.HomlEdgeError, match="objective must be one of"):
        he.autoquantize(trained, x[:200], (xt, yt), objective="speed")
