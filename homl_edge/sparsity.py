"""Pruning, every kind in one place: TF-MOT's magnitude pruning (unstructured or M:N), the sensitivity (Taylor)
and L1 criteria with a held mask, per-layer sensitivity, and channel (filter) pruning that rebuilds a narrower
model, the kind of pruning that makes a model faster, not only more compressible.

:func:`prune` is the one dispatch over criterion, structure and channels that every face calls.
"""
from __future__ import annotations

import re

import numpy as np

from . import _keras, _tf
from ._keras import kernel_of
from ._result import ModelResult, Report, result
from .errors import HomlEdgeError
from .report import Table
from .training import build_in, clone, compile_like, fit, labels_of, prepare, select_layers, train_arrays

CRITERIA = ("magnitude", "taylor", "l1")
CHANNEL_CRITERIA = ("magnitude", "taylor")
PRUNE_SCHEDULES = ("polynomial", "constant")
TRANSPARENT = {"BatchNormalization", "ReLU", "Activation", "Dropout", "MaxPooling2D", "AveragePooling2D",
               "ZeroPadding2D", "LeakyReLU", "PReLU", "ELU", "DepthwiseConv2D", "GlobalAveragePooling2D",
               "GlobalMaxPooling2D", "SpatialDropout2D"}


@result
class Pruned(ModelResult):
    """What :func:`prune` and :func:`prune_channels` return: the pruned Keras model (``.model``, the flavour given)
    and the run's report (``.report``: ``criterion``, ``per_layer`` sparsity, and as the run has them ``structure``,
    ``channels``, ``near_zero_before_l1``/``near_zero_after_l1``). ``sparsity`` is the fraction of zeros over every
    kernel; ``channels`` each layer's width before and after (channel pruning; None otherwise). ``to_frame()`` is
    the channel table for channel pruning, else the per-layer sparsity measured when pruning ended (the table of
    :func:`sparsity_report` then; training ``.model`` further does not change it). ``.report`` is read-only."""

    criterion: str
    sparsity: float
    channels: object = None
    _table: object = None  # sparsity_report(model) when pruning ended

    def to_frame(self):
        table = self.channels if self.channels is not None else self._table
        return (table if table is not None else sparsity_report(self.model)).to_frame()


def _pruned(model, report: dict) -> Pruned:
    """The result of a pruning run: ``model`` with ``report`` (its per-layer sparsity added here, then made
    read-only) and the per-layer table measured now."""
    table = sparsity_report(model)
    report = dict(report, per_layer=table.set_index("layer").sparsity.to_dict())
    total = int(table.weights.sum()) if len(table) else 0
    return Pruned(model, Report(report), report["criterion"],
                  float(table.zeros.sum() / total) if total else 0.0, report.get("channels"), table)


def _parse_structure(structure):
    if structure is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[:/x]\s*(\d+)\s*", str(structure))
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise HomlEdgeError(f"structure must look like '2:4' (at most M non-zeros in each block of N), "
                            f"got {structure!r}")
    return int(m.group(1)), int(m.group(2))


def _prunable(layer) -> bool:
    return kernel_of(layer) is not None and _keras.prune_supports(layer)


def prune(model, train, sparsity: float = 0.8, *, criterion: str = "magnitude", structure: str | None = None,
          channels: float | None = None, schedule: str = "polynomial", epochs: int = 2, batch_size: int = 32,
          learning_rate: float = 1e-3, layers: str | None = None, strategy=None, progress=True):
    """Pruning with fine-tuning: the one entry point for every way of pruning (the magic, the CLI, the panels and
    :func:`homl_edge.optimize` all call it). Returns a :class:`Pruned`: ``.model`` is an ordinary Keras model of
    the flavour given, ``.report`` what the run measured.

    ``criterion="magnitude"`` is TF-MOT's ``prune_low_magnitude``; ``"taylor"`` (sensitivity) masks the weights
    with the smallest |w * dL/dw| over a few batches; ``"l1"`` fine-tunes with an L1 penalty first, then prunes by
    magnitude (``.report`` says how much the penalty alone produced). The two masked criteria hold
    their mask with a callback during fine-tuning and hit the sparsity exactly per layer.

    ``channels=RATIO`` removes that fraction of whole filters/units instead (a narrower, faster model; see
    :func:`prune_channels`), ranked by ``criterion`` ("magnitude": each filter's L1 norm, or "taylor").
    ``schedule`` is ``"polynomial"`` (sparsity grows from 0 to ``sparsity`` over the first 3/4 of training) or
    ``"constant"``. ``structure="2:4"`` keeps at most 2 non-zeros in every block of 4 weights (Conv2D and Dense
    only, the pattern sparse tensor cores accelerate). ``layers`` is a regex of the layer names to prune.
    Pruning alone does not shrink a ``.tflite`` (zeros are still stored), it makes it compress (gzip).
    """
    if int(epochs) < (0 if channels is not None else 1):
        raise HomlEdgeError(f"epochs must be at least 1, got {epochs}")
    if criterion not in CRITERIA:
        raise HomlEdgeError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if channels is not None:
        if structure or layers:
            raise HomlEdgeError("{channels=} removes whole filters of every Conv2D/Dense: {structure=} and {layers=} "
                                "go with unstructured pruning", param=("channels", "structure", "layers"))
        return prune_channels(model, train, ratio=channels, criterion=criterion, epochs=epochs,
                              batch_size=batch_size, learning_rate=learning_rate, progress=progress,
                              strategy=strategy)
    if not 0.0 < float(sparsity) < 1.0:
        raise HomlEdgeError(f"sparsity must be between 0 and 1 (e.g. 0.8 for 80% zeros), got {sparsity}")
    if schedule not in PRUNE_SCHEDULES:
        raise HomlEdgeError(f"schedule must be one of {PRUNE_SCHEDULES}, got {schedule!r}")
    m_by_n = _parse_structure(structure)
    original = _keras.load_model(model)
    model = prepare(original)
    if criterion != "magnitude":
        if structure or layers:
            raise HomlEdgeError(f"criterion {criterion!r} prunes every Dense/Conv kernel, unstructured: "
                                "{structure=} and {layers=} go with the magnitude criterion",
                                param=("structure", "layers"))
        masked, report = masked_prune(model, train, float(sparsity), criterion, epochs=int(epochs),
                                      batch_size=batch_size, learning_rate=learning_rate, progress=progress,
                                      strategy=strategy)
        return _pruned(_keras.like(masked, original), report)
    mot = _keras.tfmot()
    sp = mot.sparsity.keras
    x, y = train_arrays(train)
    steps_per_epoch = int(np.ceil(len(x) / batch_size)) if y is not None else max(1, int(x.cardinality().numpy()))
    total = steps_per_epoch * int(epochs)
    freq = max(1, total // 20)
    end = max(freq, freq * ((total * 3 // 4) // freq))
    if schedule == "polynomial":
        sched = sp.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity), begin_step=0,
                                   end_step=end, frequency=freq)
    else:
        sched = sp.ConstantSparsity(float(sparsity), begin_step=0, frequency=freq)
    chosen = select_layers(layers)
    k = _keras.legacy()
    wrapped = []

    def wrap(layer):
        if not (_prunable(layer) and chosen(layer.name)):
            return layer
        if m_by_n is not None:
            if type(layer).__name__ not in ("Conv2D", "Dense") or kernel_of(layer).shape[-2] % m_by_n[1]:
                return layer  # TF-MOT's M:N pattern runs along input channels: they must divide into blocks
            wrapped.append(layer.name)
            return sp.prune_low_magnitude(layer, sparsity_m_by_n=m_by_n)
        wrapped.append(layer.name)
        return sp.prune_low_magnitude(layer, pruning_schedule=sched)

    def build():  # wrappers reuse the layers of a fresh clone, so they start from the model's weights
        return k.models.clone_model(clone(model), clone_function=wrap)

    pruned = build_in(strategy, build)
    if not wrapped:
        raise HomlEdgeError("no layer to prune: TF-MOT prunes Dense/Conv layers"
                            + (f" whose names match {layers!r}" if layers else "")
                            + (" (2:4 structure: Conv2D and Dense only)" if m_by_n else ""))
    fit(pruned, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         callbacks=[sp.UpdatePruningStep()], progress=progress,
         desc=f"pruning to {structure or f'{sparsity:.0%}'}", strategy=strategy)
    result = compile_like(sp.strip_pruning(pruned), model, labels_of(train))
    return _pruned(_keras.like(result, original), {"criterion": "magnitude", "structure": structure})


def sparsity_report(model):
    """Per layer with a kernel: number of weights, zeros and sparsity (a Table), read from the weights of a Keras
    model or of a result that holds one."""
    model = _keras.load_model(model)
    if _keras.flavour(model) is None:  # a .tflite, a record...: one line, not an AttributeError
        _keras.check_model(model, "model given to sparsity_report")
    rows = []
    for layer in model.layers:
        w = kernel_of(layer)
        if w is None:
            continue
        cell = getattr(layer, "cell", None)   # a recurrent layer: its recurrent kernel is pruned and counted too
        recurrent = getattr(cell, "recurrent_kernel", None) if cell is not None else None
        v = w.numpy() if recurrent is None else np.concatenate([w.numpy().ravel(), recurrent.numpy().ravel()])
        rows.append({"layer": layer.name, "type": type(layer).__name__, "weights": int(v.size),
                     "zeros": int((v == 0).sum()), "sparsity": float((v == 0).mean())})
    return Table(rows)


def check_m_by_n(model, m: int = 2, n: int = 4) -> dict:
    """For each Conv2D/Dense kernel whose input channels divide by ``n``: does every block of ``n`` weights along the input channels hold <= ``m``
    non-zeros? (The layout of NVIDIA's 2:4 sparse tensor cores and of TF-MOT's ``sparsity_m_by_n``.)"""
    model = _keras.load_model(model)
    if _keras.flavour(model) is None:  # a .tflite, a record...: one line, not an AttributeError
        _keras.check_model(model, "model given to check_m_by_n")
    out = {}
    for layer in model.layers:
        if type(layer).__name__ not in ("Conv2D", "Dense"):
            continue
        ok = m_by_n_holds(kernel_of(layer).numpy(), m, n)
        if ok is not None:  # None: the pattern does not apply (input channels not a multiple of n)
            out[layer.name] = ok
    return out


def m_by_n_holds(kernel, m: int = 2, n: int = 4) -> bool | None:
    """Does every block of ``n`` consecutive input-channel weights (axis -2) hold at most ``m`` non-zeros?
    None when the input channels are not a multiple of ``n``."""
    v = np.asarray(kernel)
    cin = v.shape[-2]
    if cin % n:
        return None
    blocks = np.moveaxis(v, -2, -1).reshape(-1, cin // n, n)
    return bool(((blocks != 0).sum(axis=-1) <= m).all())


def prune_sensitivity(model, data, sparsities=(0.5, 0.8, 0.9), *, layers: str | None = None):
    """How much accuracy each layer loses when pruned alone (one-shot, by magnitude, no fine-tuning).

    Returns a DataFrame with one row per (layer, sparsity): the accuracy and the drop against the unpruned model.
    Layers with a large drop are the ones to prune less (or not at all).
    """
    x, y = train_arrays(data)
    if y is None:
        raise HomlEdgeError("prune_sensitivity needs (x, y) arrays")
    for s in sparsities:
        if not 0.0 < float(s) < 1.0:
            raise HomlEdgeError(f"every sparsity must be between 0 and 1, got {s}")
    work = clone(prepare(model))
    yy = y.argmax(-1) if y.ndim > 1 else y

    def accuracy():
        return float((work.predict(x, verbose=0, batch_size=512).argmax(-1) == yy).mean())

    base_acc = accuracy()
    chosen = select_layers(layers)
    rows = []
    for layer in work.layers:
        w = kernel_of(layer)
        if w is None or not chosen(layer.name):
            continue
        original = w.numpy()
        for s in sparsities:
            threshold = np.quantile(np.abs(original), float(s))
            w.assign(np.where(np.abs(original) <= threshold, 0.0, original).astype(original.dtype))
            acc = accuracy()
            rows.append({"layer": layer.name, "weights": int(original.size), "sparsity": float(s),
                         "accuracy": acc, "drop": base_acc - acc})
        w.assign(original)
    return Table(rows)


# ----------------------------------------------------------------------------------------------- masked criteria and channels
def prune_report(pruned) -> dict:
    """What the pruning run reported (``pruned.report``): criterion, per-layer sparsity, the L1-only sparsity, and
    for channel pruning the width of each layer before and after (``"channels"``, a Table). Only the result of
    :func:`prune` knows how it was made: a plain Keras model is refused in one line (its zeros per layer are in
    :func:`sparsity_report`)."""
    if isinstance(pruned, Pruned):
        return pruned.report
    raise HomlEdgeError(f"prune_report takes what he.prune returned (a Pruned result), got {type(pruned).__name__}: "
                        "a model alone does not say how it was pruned; he.sparsity_report(model) reads its zeros per "
                        "layer from the weights")


# ----------------------------------------------------------------------------------------------- masked criteria
def _saliency(model, train, criterion, batches=8, batch_size=64):
    """|w| for magnitude; |w * dL/dw| summed over a few batches for taylor, L the loss ``model`` was compiled with
    (:func:`compile_like`: what fit minimises, labels conformed to the output's shape as fit conforms them; a bare
    loss function broadcast a regressor's labels (n,) against its outputs (n, 1) to (n, n), a wrong loss)."""
    tf = _tf.tf()
    kernels = [(l, kernel_of(l)) for l in model.layers if kernel_of(l) is not None and _maskable(l)]
    if criterion == "magnitude":
        return {l.name: np.abs(k.numpy()) for l, k in kernels}
    x, y = train_arrays(train)
    if y is None:
        raise HomlEdgeError("the taylor criterion needs (x, y) arrays to measure gradients")

    def loss_fn(t, p):
        return model.compiled_loss(tf.convert_to_tensor(t), p)
    scores = {l.name: np.zeros(k.shape, np.float64) for l, k in kernels}
    rng = np.random.default_rng(0)
    for _ in range(batches):
        idx = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y[idx], model(x[idx], training=False)))
        grads = tape.gradient(loss, [k for _, k in kernels])
        for (l, k), g in zip(kernels, grads):
            scores[l.name] += np.abs(k.numpy() * g.numpy())
    return scores


def _maskable(layer) -> bool:
    return type(layer).__name__ in ("Conv2D", "Dense", "DepthwiseConv2D", "Conv1D", "SeparableConv2D")


def _masks(scores, sparsity):
    """Per layer, zero the fraction ``sparsity`` of lowest-scoring weights (exact count: within 1 point)."""
    masks = {}
    for name, s in scores.items():
        n_zero = int(round(sparsity * s.size))
        order = np.argsort(s, axis=None, kind="stable")
        m = np.ones(s.size, dtype=np.float32)
        m[order[:n_zero]] = 0.0
        masks[name] = m.reshape(s.shape)
    return masks


def _mask_callback(model, masks):
    k = _keras.legacy()
    pairs = [(kernel_of(model.get_layer(n)), m) for n, m in masks.items()]

    class HoldMask(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for var, m in pairs:
                var.assign(var * m)

    return HoldMask()


def masked_prune(model, train, sparsity, criterion, *, epochs, batch_size, learning_rate, progress, strategy,
                 l1=1e-4):
    """Taylor / L1 / magnitude pruning with a mask held by a callback during fine-tuning: (model, report)."""
    work = clone(model)
    compile_like(work, model, labels_of(train))
    report = {"criterion": criterion}
    if criterion == "l1":
        k = _keras.legacy()
        kernels = [kernel_of(l) for l in work.layers if kernel_of(l) is not None and _maskable(l)]
        before = float(np.mean([np.mean(np.abs(v.numpy()) < 1e-3) for v in kernels]))
        work.add_loss(lambda: l1 * sum(k.backend.sum(k.backend.abs(v)) for v in kernels))
        fit(work, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
             progress=progress, desc="L1 fine-tuning", strategy=strategy)
        after = float(np.mean([np.mean(np.abs(v.numpy()) < 1e-3) for v in kernels]))
        report["near_zero_before_l1"] = before
        report["near_zero_after_l1"] = after  # |w| < 1e-3: what the penalty alone produced
        plain = clone(work)  # drops the penalty for the masked fine-tuning
        work = plain
        compile_like(work, model, labels_of(train))
    scores = _saliency(work, train, "taylor" if criterion == "taylor" else "magnitude")
    masks = _masks(scores, float(sparsity))
    for name, m in masks.items():
        var = kernel_of(work.get_layer(name))
        var.assign(var.numpy() * m)
    fit(work, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         callbacks=[_mask_callback(work, masks)], progress=progress,
         desc=f"{criterion} pruning to {sparsity:.0%}", strategy=strategy)
    return compile_like(clone(work), model, labels_of(train)), report


# ----------------------------------------------------------------------------------------------- channels
def _channel_path_ok(layer, output_names):
    """Can this layer's output channels be removed? Follow its consumers through channel-transparent layers."""
    stack, seen = [layer], set()
    while stack:
        cur = stack.pop()
        if cur.name in seen:
            continue
        seen.add(cur.name)
        if cur.name in output_names:
            return False, "its output is the model's output"
        for c in _keras.consumers(cur):
            kind = type(c).__name__
            if kind in ("Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum"):
                return False, f"feeds {c.name} ({kind}, a residual/merge): left alone so that its inputs still match"
            if getattr(c, "depth_multiplier", 1) != 1:  # C inputs give C x M channels: one index no longer fits
                return False, (f"feeds {c.name} ({kind} with depth_multiplier {c.depth_multiplier}), which "
                               "homl-edge cannot narrow")
            if kind in TRANSPARENT or kind == "Flatten":
                stack.append(c)
            elif kind in ("Conv2D", "Dense", "Conv1D"):
                continue
            else:
                return False, f"feeds {c.name} ({kind}), which homl-edge cannot narrow"
    return True, ""


def filter_scores(weights) -> np.ndarray:
    """One score per output channel (the last axis): the L1 norm of that filter's entries."""
    w = np.asarray(weights)
    return np.abs(w).reshape(-1, w.shape[-1]).sum(0)


def channels_to_keep(scores, ratio: float) -> np.ndarray:
    """Indices (ascending) of the channels that survive removing the fraction ``ratio`` with the lowest scores;
    at least one survives, ties keep the earlier channel."""
    scores = np.asarray(scores)
    n_keep = max(1, int(round(scores.size * (1 - float(ratio)))))
    return np.sort(np.argsort(-scores, kind="stable")[:n_keep])


def _channel_scores(model, train, criterion):
    if criterion == "magnitude":
        return {l.name: filter_scores(kernel_of(l).numpy())
                for l in model.layers if type(l).__name__ in ("Conv2D", "Dense")}
    s = _saliency(model, train, "taylor")
    return {n: filter_scores(v) for n, v in s.items() if type(model.get_layer(n)).__name__ in ("Conv2D", "Dense")}


def prune_channels(model, train, ratio: float = 0.5, *, criterion: str = "magnitude", epochs: int = 2,
                   batch_size: int = 32, learning_rate: float = 1e-3, progress=True, strategy=None):
    """Remove whole filters (Conv2D) and units (Dense), rebuild a narrower model, fine-tune it.

    The next layer's input channels and the BatchNormalization parameters of removed channels are sliced away
    too; a layer whose output feeds a residual ``Add`` (or the model's output) is left alone, and the table says
    why. ``criterion`` ranks filters: ``"magnitude"`` by the L1 norm of each filter's weights, ``"taylor"`` by
    |w * dL/dw| summed over the filter. Returns a :class:`Pruned`: ``.model`` is the narrower model (the flavour
    given); ``.channels`` lists each layer's width before and after.
    """
    if not 0.0 < float(ratio) < 1.0:
        raise HomlEdgeError(f"ratio must be between 0 and 1 (the fraction of channels to remove), got {ratio}")
    if criterion not in CHANNEL_CRITERIA:
        raise HomlEdgeError(f"channel pruning ranks filters by {' or '.join(repr(c) for c in CHANNEL_CRITERIA)}; "
                            f"got criterion {criterion!r}")
    original = _keras.load_model(model)
    model = prepare(original)
    work = clone(model)
    compile_like(work, model, labels_of(train))
    k = _keras.legacy()
    output_names = _keras.output_layer_names(work)
    scores = _channel_scores(work, train, criterion)
    keep, rows = {}, []
    for layer in work.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Dense"):
            continue
        width = int(kernel_of(layer).shape[-1])
        ok, why = _channel_path_ok(layer, output_names)
        if ok:
            keep[layer.name] = channels_to_keep(scores[layer.name], ratio)
        rows.append({"layer": layer.name, "type": kind, "before": width,
                     "after": len(keep[layer.name]) if ok else width, "note": why})
    if not keep:
        raise HomlEdgeError("no layer could be narrowed: " + "; ".join(f"{r['layer']} {r['note']}" for r in rows))
    cfg = work.get_config()
    for lc in cfg["layers"]:
        name = lc["config"]["name"]
        if name in keep:
            key = "filters" if "filters" in lc["config"] else "units"
            lc["config"][key] = int(len(keep[name]))
    with _tf.quiet():
        narrow = work.__class__.from_config(cfg)
    _copy_sliced(work, narrow, keep)
    compile_like(narrow, model, labels_of(train))
    if int(epochs) > 0:  # epochs=0: the narrowed model as sliced, before any fine-tuning
        fit(narrow, model, train, epochs=int(epochs), batch_size=batch_size, learning_rate=learning_rate,
             progress=progress, desc=f"fine-tuning after removing {ratio:.0%} of channels", strategy=strategy)
    return _pruned(_keras.like(narrow, original), {"criterion": criterion,
                                                   "channels": Table(rows).set_index("layer")})


def flat_indices(spatial: int, channels: int, kept) -> np.ndarray:
    """Which features of a Flatten (channels last: position-major) survive when only the channels ``kept`` of
    its ``channels`` survive at each of its ``spatial`` positions."""
    kept = np.asarray(kept)
    return (np.arange(int(spatial))[:, None] * int(channels) + kept[None, :]).ravel()


def _copy_sliced(old, new, keep):
    """Copy weights into the narrower model, slicing output channels (keep) and input channels (upstream)."""
    in_idx = {}  # layer name -> indices of its input channels (or flattened features) that survive

    out_idx = {}
    for layer in old.layers:
        kind = type(layer).__name__
        prev = _keras.inbound_layer(layer)
        incoming = out_idx.get(prev.name) if prev is not None else None
        target = new.get_layer(layer.name)
        weights = layer.get_weights()
        if kind == "Flatten" and incoming is not None:
            spatial = int(np.prod(layer.input_shape[1:-1]))
            channels = int(layer.input_shape[-1])
            out_idx[layer.name] = flat_indices(spatial, channels, incoming)
            continue
        if kind in ("Conv2D", "Dense"):
            w, rest = weights[0], weights[1:]
            if incoming is not None:
                w = np.take(w, incoming, axis=-2)
            mine = keep.get(layer.name)
            if mine is not None:
                w = np.take(w, mine, axis=-1)
                rest = [np.take(r, mine, axis=-1) for r in rest]
            target.set_weights([w] + rest)
            out_idx[layer.name] = mine
            continue
        if incoming is not None and weights:  # BatchNormalization, DepthwiseConv2D: per-channel parameters
            if kind == "DepthwiseConv2D":
                weights = [np.take(weights[0], incoming, axis=2)] + [np.take(b, incoming, axis=-1)
                                                                      for b in weights[1:]]
            else:
                weights = [np.take(p, incoming, axis=-1) for p in weights]
        if weights:
            target.set_weights(weights)
        out_idx[layer.name] = incoming if kind in TRANSPARENT else None
