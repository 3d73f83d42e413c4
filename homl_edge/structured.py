"""Pruning beyond TF-MOT: sensitivity (Taylor) and L1 criteria with a held mask, and channel (filter) pruning
that rebuilds a narrower model, the kind of pruning that makes a model faster, not only more compressible."""
from __future__ import annotations

import weakref

import numpy as np

from . import _tf
from .errors import HomlEdgeError
from .training import _fit, _labels, _train_arrays, clone, compile_like, kernel_of

CRITERIA = ("magnitude", "taylor", "l1")
_reports: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
TRANSPARENT = {"BatchNormalization", "ReLU", "Activation", "Dropout", "MaxPooling2D", "AveragePooling2D",
               "ZeroPadding2D", "LeakyReLU", "PReLU", "ELU", "DepthwiseConv2D", "GlobalAveragePooling2D",
               "GlobalMaxPooling2D", "SpatialDropout2D"}


def prune_report(model) -> dict | None:
    """What the last pruning run reported for this model (criterion, per-layer sparsity, L1-only sparsity)."""
    return _reports.get(model)


# ----------------------------------------------------------------------------------------------- masked criteria
def _saliency(model, train, criterion, batches=8, batch_size=64):
    """|w| for magnitude; |w * dL/dw| summed over a few batches for taylor."""
    tf = _tf.tf()
    kernels = [(l, kernel_of(l)) for l in model.layers if kernel_of(l) is not None and _maskable(l)]
    if criterion == "magnitude":
        return {l.name: np.abs(k.numpy()) for l, k in kernels}
    x, y = _train_arrays(train)
    if y is None:
        raise HomlEdgeError("the taylor criterion needs (x, y) arrays to measure gradients")
    loss_fn = model.loss if callable(getattr(model, "loss", None)) else None
    if loss_fn is None:
        from .training import _loss_and_metrics

        loss_fn, _ = _loss_and_metrics(model, y)
        if isinstance(loss_fn, str):
            loss_fn = _tf.keras().losses.get(loss_fn)
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
    k = _tf.keras()
    pairs = [(kernel_of(model.get_layer(n)), m) for n, m in masks.items()]

    class HoldMask(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for var, m in pairs:
                var.assign(var * m)

    return HoldMask()


def masked_prune(model, train, sparsity, criterion, *, epochs, batch_size, learning_rate, progress, strategy,
                 l1=1e-4):
    """Taylor / L1 / magnitude pruning with a mask held by a callback during fine-tuning."""
    work = clone(model)
    compile_like(work, model, _labels(train))
    report = {"criterion": criterion}
    if criterion == "l1":
        k = _tf.keras()
        kernels = [kernel_of(l) for l in work.layers if kernel_of(l) is not None and _maskable(l)]
        before = float(np.mean([np.mean(np.abs(v.numpy()) < 1e-3) for v in kernels]))
        work.add_loss(lambda: l1 * sum(k.backend.sum(k.backend.abs(v)) for v in kernels))
        _fit(work, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
             progress=progress, desc="L1 fine-tuning", strategy=strategy)
        after = float(np.mean([np.mean(np.abs(v.numpy()) < 1e-3) for v in kernels]))
        report["near_zero_before_l1"] = before
        report["near_zero_after_l1"] = after  # |w| < 1e-3: what the penalty alone produced
        plain = clone(work)  # drops the penalty for the masked fine-tuning
        work = plain
        compile_like(work, model, _labels(train))
    scores = _saliency(work, train, "taylor" if criterion == "taylor" else "magnitude")
    masks = _masks(scores, float(sparsity))
    for name, m in masks.items():
        var = kernel_of(work.get_layer(name))
        var.assign(var.numpy() * m)
    _fit(work, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         callbacks=[_mask_callback(work, masks)], progress=progress,
         desc=f"{criterion} pruning to {sparsity:.0%}", strategy=strategy)
    result = compile_like(clone(work), model, _labels(train))
    from .training import sparsity_report

    report["per_layer"] = sparsity_report(result).set_index("layer").sparsity.to_dict()
    _reports[result] = report
    return result


# ----------------------------------------------------------------------------------------------- channels
def _consumers(layer):
    out = []
    for node in getattr(layer, "_outbound_nodes", []):
        out.append(node.outbound_layer)
    return out


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
        for c in _consumers(cur):
            kind = type(c).__name__
            if kind in ("Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum"):
                return False, f"feeds {c.name} ({kind}, a residual/merge): left alone so that its inputs still match"
            if kind in TRANSPARENT or kind == "Flatten":
                stack.append(c)
            elif kind in ("Conv2D", "Dense", "Conv1D"):
                continue
            else:
                return False, f"feeds {c.name} ({kind}), which homl-edge cannot narrow"
    return True, ""


def _channel_scores(model, train, criterion):
    if criterion == "l1":
        return {l.name: np.abs(kernel_of(l).numpy()).reshape(-1, kernel_of(l).shape[-1]).sum(0)
                for l in model.layers if type(l).__name__ in ("Conv2D", "Dense")}
    s = _saliency(model, train, "taylor")
    return {n: v.reshape(-1, v.shape[-1]).sum(0) for n, v in s.items()
            if type(model.get_layer(n)).__name__ in ("Conv2D", "Dense")}


def prune_channels(model, train, ratio: float = 0.5, *, criterion: str = "l1", epochs: int = 2,
                   batch_size: int = 32, learning_rate: float = 1e-3, progress: bool = True, strategy=None):
    """Remove whole filters (Conv2D) and units (Dense), rebuild a narrower model, fine-tune it.

    The next layer's input channels and the BatchNormalization parameters of removed channels are sliced away
    too; a layer whose output feeds a residual ``Add`` (or the model's output) is left alone, and the table says
    why. Returns ``(model, table)``; the table lists each layer's width before and after.
    """
    import pandas as pd

    if not 0.0 < float(ratio) < 1.0:
        raise HomlEdgeError(f"ratio must be between 0 and 1 (the fraction of channels to remove), got {ratio}")
    if criterion not in ("l1", "taylor"):
        raise HomlEdgeError(f"criterion must be 'l1' or 'taylor', got {criterion!r}")
    work = clone(model)  # refuses subclassed models
    compile_like(work, model, _labels(train))
    k = _tf.keras()
    output_names = {t._keras_history.layer.name for t in work.outputs}
    scores = _channel_scores(work, train, criterion)
    keep, rows = {}, []
    for layer in work.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Dense"):
            continue
        width = int(kernel_of(layer).shape[-1])
        ok, why = _channel_path_ok(layer, output_names)
        if ok:
            n_keep = max(1, int(round(width * (1 - float(ratio)))))
            keep[layer.name] = np.sort(np.argsort(-scores[layer.name], kind="stable")[:n_keep])
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
    compile_like(narrow, model, _labels(train))
    if int(epochs) > 0:  # epochs=0: the narrowed model as sliced, before any fine-tuning
        _fit(narrow, model, train, epochs=int(epochs), batch_size=batch_size, learning_rate=learning_rate,
             progress=progress, desc=f"fine-tuning after removing {ratio:.0%} of channels", strategy=strategy)
    return narrow, pd.DataFrame(rows)


def _copy_sliced(old, new, keep):
    """Copy weights into the narrower model, slicing output channels (keep) and input channels (upstream)."""
    in_idx = {}  # layer name -> indices of its input channels (or flattened features) that survive

    def producer(layer):
        nodes = layer._inbound_nodes
        if not nodes:
            return None
        inbound = nodes[0].inbound_layers
        if isinstance(inbound, (list, tuple)):
            return inbound[0] if len(inbound) == 1 else None
        return inbound

    out_idx = {}
    for layer in old.layers:
        kind = type(layer).__name__
        prev = producer(layer)
        incoming = out_idx.get(prev.name) if prev is not None else None
        target = new.get_layer(layer.name)
        weights = layer.get_weights()
        if kind == "Flatten" and incoming is not None:
            spatial = int(np.prod(layer.input_shape[1:-1]))
            channels = int(layer.input_shape[-1])
            flat = (np.arange(spatial)[:, None] * channels + incoming[None, :]).ravel()
            out_idx[layer.name] = flat
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
