"""Small reference models built from scratch (``weights=None``): nothing is downloaded."""
from __future__ import annotations

from . import _keras


def digits_cnn(conv_filters: int = 32, dense_units: int = 128, seed: int | None = 0, compile: bool = True):
    """The chapters' reference model for the 8x8 digits: Conv2D -> BatchNorm -> ReLU -> Dense -> softmax.

    The convolution has no fused activation, so that quantization-aware training can fold the batch norm
    (TF-MOT accepts Conv2D -> BatchNormalization -> ReLU, not Conv2D(relu) -> BatchNormalization).
    """
    k = _keras.legacy()
    if seed is not None:
        k.utils.set_random_seed(seed)
    model = k.Sequential([
        k.layers.Input(shape=(8, 8, 1), name="image"),
        k.layers.Conv2D(conv_filters, 3, name="conv"),
        k.layers.BatchNormalization(name="bn"),
        k.layers.ReLU(name="relu"),
        k.layers.Flatten(name="flatten"),
        k.layers.Dense(dense_units, activation="relu", name="dense"),
        k.layers.Dense(10, activation="softmax", name="classifier"),
    ], name="digits_cnn")
    if compile:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def trained_digits_cnn(epochs: int = 5, seed: int = 0, **kwargs):
    """``digits_cnn`` trained on the bundled digits (about 2 s on a laptop CPU); returns (model, data)."""
    from .datasets import digits

    (x, y), (xt, yt) = digits()
    model = digits_cnn(seed=seed, **kwargs)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model, ((x, y), (xt, yt))


def wide_convnet(filters: int = 64, size: int = 32, seed: int | None = 0, compile: bool = True):
    """Four 3x3 convolutions of ``filters`` filters on ``size``x``size`` RGB inputs: wide enough to time, the
    reference for channel pruning (a narrower model is smaller and faster, not only more compressible)."""
    k = _keras.legacy()
    if seed is not None:
        k.utils.set_random_seed(seed)
    layers = [k.layers.Input(shape=(size, size, 3), name="image")]
    for i in range(4):
        layers += [k.layers.Conv2D(filters, 3, padding="same", name=f"conv{i + 1}"),
                   k.layers.BatchNormalization(name=f"bn{i + 1}"), k.layers.ReLU(name=f"relu{i + 1}")]
    layers += [k.layers.GlobalAveragePooling2D(name="pool"), k.layers.Dense(10, activation="softmax", name="classifier")]
    model = k.Sequential(layers, name="wide_convnet")
    if compile:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
