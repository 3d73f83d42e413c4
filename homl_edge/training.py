"""Optimization that needs training: quantization-aware training, pruning and weight clustering (TF-MOT).

Every function here takes a tf.keras model and training data ``(x, y)`` (or a ``tf.data.Dataset`` of batches),
never modifies the model passed in, shows a progress bar (``progress=False`` hides it), accepts a
``tf.distribute`` strategy, and returns an ordinary Keras model that :func:`homl_edge.quantize` converts.
"""
from __future__ import annotations

import re

import numpy as np

from . import _tf
from .errors import HomlEdgeError, first_line

PRUNE_SCHEDULES = ("polynomial", "constant")
CLUSTER_INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "random": "RANDOM", "density": "DENSITY_BASED"}
PRESERVE = (None, "sparsity", "clusters", "both")


# ----------------------------------------------------------------------------------------------- common parts
def clone(model):
    """A copy of a Sequential or functional model with the same weights (the original stays untouched)."""
    if isinstance(model, _tf.keras().Model) and not _tf.is_functional(model):
        raise HomlEdgeError(f"{type(model).__name__} is a subclassed model: TF-MOT can only wrap Sequential and "
                            "functional models; rebuild it with tf.keras.Sequential or the functional API")
    k = _tf.keras()
    scope = _custom_scope()
    with scope:
        copy = k.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _custom_scope():
    mot = _tf.tfmot()
    return mot.quantization.keras.quantize_scope()


def _train_arrays(train):
    """Return (x, y) arrays, or (dataset, None) for a tf.data.Dataset."""
    tf = _tf.tf()
    if isinstance(train, tf.data.Dataset):
        return train, None
    if not (isinstance(train, (tuple, list)) and len(train) == 2):
        raise HomlEdgeError("training data must be a pair (x, y) of arrays or a tf.data.Dataset of (x, y) batches")
    x, y = np.asarray(train[0]), np.asarray(train[1])
    if len(x) != len(y):
        raise HomlEdgeError(f"x has {len(x)} samples but y has {len(y)} labels")
    if len(x) == 0:
        raise HomlEdgeError("the training data is empty")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise HomlEdgeError("the training inputs contain NaN or infinite values: clean them first")
    return x, y


def _check_input_shape(model, x):
    want = tuple(model.inputs[0].shape)
    if x.ndim != len(want) or any(w is not None and w != g for w, g in zip(want[1:], x.shape[1:])):
        shape = "(n, " + ", ".join("?" if d is None else str(d) for d in want[1:]) + ")"
        raise HomlEdgeError(f"training inputs have shape {tuple(x.shape)}; the model expects {shape}")


def _loss_and_metrics(model, y):
    """The original model's loss if it was compiled, else a guess from the labels and the last activation."""
    k = _tf.keras()
    loss = getattr(model, "loss", None)
    if loss:
        return loss, ["accuracy"]
    last = model.layers[-1]
    softmax = getattr(getattr(last, "activation", None), "__name__", "") == "softmax" or \
        type(last).__name__ == "Softmax"
    if y is None or (np.issubdtype(np.asarray(y).dtype, np.integer) and np.asarray(y).ndim == 1):
        return k.losses.SparseCategoricalCrossentropy(from_logits=not softmax), ["accuracy"]
    if np.asarray(y).ndim == 2 and np.asarray(y).shape[1] > 1:
        return k.losses.CategoricalCrossentropy(from_logits=not softmax), ["accuracy"]
    return k.losses.MeanSquaredError(), []


def _labels(train):
    return None if not isinstance(train, (tuple, list)) else np.asarray(train[1])


def _dataset(x, y, batch_size, seed=0):
    tf = _tf.tf()
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch_size)


def progress_callback(total_steps: int, desc: str):
    """A Keras callback that drives a tqdm bar (a widget in Jupyter, text elsewhere)."""
    k = _tf.keras()
    from tqdm.auto import tqdm

    class Progress(k.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total_steps, desc=desc, unit="step", leave=True)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if logs and batch % 10 == 0:
                self.bar.set_postfix({k_: f"{v:.3f}" for k_, v in logs.items() if k_ in ("loss", "accuracy")})

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def _fit(model, original, train, *, epochs, batch_size, learning_rate, callbacks=(), progress=True,
         desc="training", strategy=None):
    """Compile ``model`` like ``original`` and fit it; returns the Keras History."""
    k = _tf.keras()
    x, y = _train_arrays(train)
    if y is not None:
        _check_input_shape(original, x)
        data = _dataset(x, y, batch_size)
        steps = int(np.ceil(len(x) / batch_size)) * epochs
    else:
        data = x
        card = int(data.cardinality().numpy())
        steps = card * epochs if card > 0 else None
    compile_like(model, original, y, learning_rate, strategy)
    cbs = list(callbacks)
    if progress and steps:
        cbs.append(progress_callback(steps, desc))
    with _quiet_tf_logs():
        return model.fit(data, epochs=epochs, verbose=0, callbacks=cbs)


def compile_like(model, original, y=None, learning_rate: float = 1e-3, strategy=None):
    """Compile ``model`` with the original's loss (or one guessed from the labels), Adam and accuracy."""
    k = _tf.keras()
    loss, metrics = _loss_and_metrics(original, y)
    scope = strategy.scope() if strategy is not None else _nullcontext()
    with scope:
        model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return model


class _quiet_tf_logs:
    """TF-MOT logs harmless warnings on every step of some schemes (e.g. CQAT's 'Gradients do not exist')."""

    def __enter__(self):
        import logging

        self._loggers = [logging.getLogger("tensorflow"), logging.getLogger()]
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        for lg, level in zip(self._loggers, self._levels):
            lg.setLevel(level)
        return False


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def kernel_of(layer):
    """The main weight tensor of a layer (kernel or depthwise kernel), or None."""
    for attr in ("kernel", "depthwise_kernel"):
        w = getattr(layer, attr, None)
        if w is not None:
            return w
    return None


def _select(layers_regex):
    if layers_regex is None:
        return lambda name: True
    pat = re.compile(layers_regex)
    return lambda name: bool(pat.search(name))


def _build_in(strategy, fn):
    if strategy is None:
        return fn()
    with strategy.scope():
        return fn()


# ----------------------------------------------------------------------------------------------- QAT
def qat_problems(model) -> list[str]:
    """Every layer that TF-MOT's default 8-bit QAT would reject, each with what to do about it."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import \
        default_8bit_quantize_registry as reg

    registry = reg.Default8BitQuantizeRegistry()
    problems = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind == "BatchNormalization":
            prev = _inbound(layer)
            act = getattr(getattr(prev, "activation", None), "__name__", "linear") if prev is not None else "linear"
            if prev is not None and act not in ("linear", None):
                problems.append(f"{layer.name} (BatchNormalization after {prev.name} with a fused '{act}' "
                                f"activation: give {prev.name} activation=None and add the activation after "
                                f"{layer.name})")
                continue
            if prev is not None and type(prev).__name__ in ("Conv2D", "DepthwiseConv2D"):
                continue  # TF-MOT folds Conv -> BatchNormalization (-> ReLU) itself
        if not registry.supports(layer):
            problems.append(f"{layer.name} ({kind}: not supported by TF-MOT 8-bit QAT; pass unsupported='float' to "
                            f"keep it in float, or replace it)")
    return problems


def _inbound(layer):
    try:
        inbound = layer._inbound_nodes[0].inbound_layers
    except (IndexError, AttributeError):
        return None
    if isinstance(inbound, (list, tuple)):
        return inbound[0] if len(inbound) == 1 else None
    return inbound


def quantize_aware(model, train, epochs: int = 2, *, batch_size: int = 32, learning_rate: float = 1e-4,
                   preserve: str | None = None, unsupported: str = "error", strategy=None, progress: bool = True):
    """Quantization-aware training: insert fake-quant ops (TF-MOT) and fine-tune; convert with mode 'int8'.

    ``preserve`` chooses a collaborative-optimization scheme for a model that is already pruned or clustered:
    ``"sparsity"`` (PQAT), ``"clusters"`` (CQAT) or ``"both"`` (PCQAT), so that QAT keeps the zeros/centroids.
    ``unsupported="float"`` leaves layers TF-MOT cannot quantize in float instead of raising.
    """
    if preserve not in PRESERVE:
        raise HomlEdgeError(f"preserve must be one of {PRESERVE}, got {preserve!r}")
    if unsupported not in ("error", "float"):
        raise HomlEdgeError("unsupported must be 'error' or 'float'")
    problems = qat_problems(clone(model))
    if problems and unsupported == "error":
        raise HomlEdgeError(f"QAT cannot quantize {len(problems)} layer(s): " + "; ".join(problems))
    mot = _tf.tfmot()
    q = mot.quantization.keras
    bad = {p.split(" ")[0] for p in problems}

    def build():
        if bad:
            k = _tf.keras()

            def annotate(layer):
                if layer.name in bad or type(layer).__name__ == "InputLayer":
                    return layer
                return q.quantize_annotate_layer(layer)

            annotated = k.models.clone_model(clone(model), clone_function=annotate)
        else:
            annotated = q.quantize_annotate_model(clone(model))
        scheme = None
        if preserve == "sparsity":
            scheme = mot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        elif preserve == "clusters":
            scheme = mot.experimental.combine.Default8BitClusterPreserveQuantizeScheme()
        elif preserve == "both":
            scheme = mot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
        with q.quantize_scope():
            return q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)

    try:
        qat = _build_in(strategy, build)
    except (ValueError, RuntimeError) as e:
        first = first_line(e)
        raise HomlEdgeError(f"TF-MOT could not prepare the model for QAT: {first[:300]}") from None
    _fit(qat, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         progress=progress, desc="QAT" + (f" (preserve {preserve})" if preserve else ""), strategy=strategy)
    if preserve in ("clusters", "both"):
        qat = compile_like(mot.experimental.combine.strip_clustering_cqat(qat), model, _labels(train))
    return qat


# ----------------------------------------------------------------------------------------------- pruning
def _parse_structure(structure):
    if structure is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[:/x]\s*(\d+)\s*", str(structure))
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise HomlEdgeError(f"structure must look like '2:4' (at most M non-zeros in each block of N), "
                            f"got {structure!r}")
    return int(m.group(1)), int(m.group(2))


def _prunable(layer) -> bool:
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    return kernel_of(layer) is not None and prune_registry.PruneRegistry.supports(layer)


def prune(model, train, sparsity: float = 0.8, *, structure: str | None = None, schedule: str = "polynomial",
          epochs: int = 2, batch_size: int = 32, learning_rate: float = 1e-3, layers: str | None = None,
          strategy=None, progress: bool = True, criterion: str = "magnitude"):
    """Pruning with fine-tuning; returns an ordinary (stripped) Keras model.

    ``criterion="magnitude"`` is TF-MOT's ``prune_low_magnitude``; ``"taylor"`` (sensitivity) masks the weights
    with the smallest |w * dL/dw| over a few batches; ``"l1"`` fine-tunes with an L1 penalty first, then prunes by
    magnitude (``he.structured.prune_report(model)`` says how much the penalty alone produced). The two masked
    criteria hold their mask with a callback during fine-tuning and hit the sparsity exactly per layer.

    ``schedule`` is ``"polynomial"`` (sparsity grows from 0 to ``sparsity`` over the first 3/4 of training) or
    ``"constant"``. ``structure="2:4"`` keeps at most 2 non-zeros in every block of 4 weights (Conv2D and Dense
    only, the pattern sparse tensor cores accelerate). ``layers`` is a regex of the layer names to prune.
    See :func:`sparsity_report` for what was reached: pruning alone does not shrink a ``.tflite`` (zeros are still
    stored), it makes it compress (gzip).
    """
    if not 0.0 < float(sparsity) < 1.0:
        raise HomlEdgeError(f"sparsity must be between 0 and 1 (e.g. 0.8 for 80% zeros), got {sparsity}")
    if schedule not in PRUNE_SCHEDULES:
        raise HomlEdgeError(f"schedule must be one of {PRUNE_SCHEDULES}, got {schedule!r}")
    if int(epochs) < 1:
        raise HomlEdgeError("epochs must be at least 1")
    from . import structured

    if criterion not in structured.CRITERIA:
        raise HomlEdgeError(f"criterion must be one of {', '.join(structured.CRITERIA)}, got {criterion!r}")
    m_by_n = _parse_structure(structure)
    if criterion != "magnitude":
        if structure or layers:
            raise HomlEdgeError(f"criterion {criterion!r} prunes every Dense/Conv kernel, unstructured: "
                                "structure= and layers= go with the magnitude criterion")
        return structured.masked_prune(model, train, float(sparsity), criterion, epochs=int(epochs),
                                       batch_size=batch_size, learning_rate=learning_rate, progress=progress,
                                       strategy=strategy)
    clone(model)  # refuses subclassed models before any work
    mot = _tf.tfmot()
    sp = mot.sparsity.keras
    x, y = _train_arrays(train)
    steps_per_epoch = int(np.ceil(len(x) / batch_size)) if y is not None else max(1, int(x.cardinality().numpy()))
    total = steps_per_epoch * int(epochs)
    freq = max(1, total // 20)
    end = max(freq, freq * ((total * 3 // 4) // freq))
    if schedule == "polynomial":
        sched = sp.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity), begin_step=0,
                                   end_step=end, frequency=freq)
    else:
        sched = sp.ConstantSparsity(float(sparsity), begin_step=0, frequency=freq)
    chosen = _select(layers)
    k = _tf.keras()
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

    pruned = _build_in(strategy, build)
    if not wrapped:
        raise HomlEdgeError("no layer to prune: TF-MOT prunes Dense/Conv layers"
                            + (f" whose names match {layers!r}" if layers else "")
                            + (" (2:4 structure: Conv2D and Dense only)" if m_by_n else ""))
    _fit(pruned, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         callbacks=[sp.UpdatePruningStep()], progress=progress,
         desc=f"pruning to {structure or f'{sparsity:.0%}'}", strategy=strategy)
    return compile_like(sp.strip_pruning(pruned), model, _labels(train))


def sparsity_report(model):
    """Per layer with a kernel: number of weights, zeros and sparsity (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for layer in model.layers:
        w = kernel_of(layer)
        if w is None:
            continue
        v = w.numpy()
        rows.append({"layer": layer.name, "type": type(layer).__name__, "weights": int(v.size),
                     "zeros": int((v == 0).sum()), "sparsity": float((v == 0).mean())})
    return pd.DataFrame(rows)


def check_m_by_n(model, m: int = 2, n: int = 4) -> dict:
    """For each Conv2D/Dense kernel whose input channels divide by ``n``: does every block of ``n`` weights along the input channels hold <= ``m``
    non-zeros? (The layout of NVIDIA's 2:4 sparse tensor cores and of TF-MOT's ``sparsity_m_by_n``.)"""
    out = {}
    for layer in model.layers:
        if type(layer).__name__ not in ("Conv2D", "Dense"):
            continue
        v = kernel_of(layer).numpy()
        cin = v.shape[-2]
        if cin % n:
            continue  # the pattern does not apply (input channels not a multiple of n)
        blocks = np.moveaxis(v, -2, -1).reshape(-1, cin // n, n)
        out[layer.name] = bool(((blocks != 0).sum(axis=-1) <= m).all())
    return out


def prune_sensitivity(model, data, sparsities=(0.5, 0.8, 0.9), *, layers: str | None = None):
    """How much accuracy each layer loses when pruned alone (one-shot, by magnitude, no fine-tuning).

    Returns a DataFrame with one row per (layer, sparsity): the accuracy and the drop against the unpruned model.
    Layers with a large drop are the ones to prune less (or not at all).
    """
    import pandas as pd

    x, y = _train_arrays(data)
    if y is None:
        raise HomlEdgeError("prune_sensitivity needs (x, y) arrays")
    for s in sparsities:
        if not 0.0 < float(s) < 1.0:
            raise HomlEdgeError(f"every sparsity must be between 0 and 1, got {s}")
    work = clone(model)
    yy = y.argmax(-1) if y.ndim > 1 else y

    def accuracy():
        return float((work.predict(x, verbose=0, batch_size=512).argmax(-1) == yy).mean())

    base_acc = accuracy()
    chosen = _select(layers)
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
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- clustering
def cluster(model, train, clusters: int = 16, *, init: str = "kmeans++", preserve_sparsity: bool = False,
            epochs: int = 1, batch_size: int = 32, learning_rate: float = 1e-4, layers: str | None = None,
            strategy=None, progress: bool = True):
    """Weight clustering (TF-MOT ``cluster_weights``): each kernel keeps at most ``clusters`` distinct values.

    ``init`` is the centroid initialisation: ``"kmeans++"``, ``"linear"``, ``"random"`` or ``"density"``.
    ``preserve_sparsity=True`` keeps the zeros of a pruned model (sparsity-preserving clustering).
    Returns the stripped model; :func:`unique_weights` counts the values per kernel.
    """
    if int(clusters) < 2:
        raise HomlEdgeError(f"clusters must be at least 2, got {clusters}")
    if init not in CLUSTER_INITS:
        raise HomlEdgeError(f"init must be one of {', '.join(CLUSTER_INITS)}, got {init!r}")
    mot = _tf.tfmot()
    ck = mot.clustering.keras
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

    clone(model)  # refuses subclassed models before any work
    chosen = _select(layers)
    k = _tf.keras()
    wrapped = []
    params = {"number_of_clusters": int(clusters),
              "cluster_centroids_init": getattr(ck.CentroidInitialization, CLUSTER_INITS[init])}
    if preserve_sparsity:
        params["preserve_sparsity"] = True

    def wrap(layer):
        w = kernel_of(layer)
        if w is None or not chosen(layer.name) or int(np.prod(w.shape)) <= int(clusters):
            return layer
        if not clustering_registry.ClusteringRegistry.supports(layer):
            return layer
        wrapped.append(layer.name)
        return ck.cluster_weights(layer, **params)

    def build():
        return k.models.clone_model(clone(model), clone_function=wrap)

    clustered = _build_in(strategy, build)
    if not wrapped:
        raise HomlEdgeError("no layer to cluster: TF-MOT clusters Dense/Conv kernels with more weights than clusters"
                            + (f" whose names match {layers!r}" if layers else ""))
    _fit(clustered, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         progress=progress, desc=f"clustering to {clusters} centroids", strategy=strategy)
    return compile_like(ck.strip_clustering(clustered), model, _labels(train))


def unique_weights(model) -> dict:
    """Number of distinct values in each layer's kernel."""
    return {layer.name: int(np.unique(kernel_of(layer).numpy()).size)
            for layer in model.layers if kernel_of(layer) is not None}
