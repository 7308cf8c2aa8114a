"""The tinyseg side of the model benchmarks: the seed CNN, the U-Net, and their random data.

Imports happen inside the functions, so that a start-up measurement can time them.
"""
import numpy as np


def seed_cnn(input_hw=(32, 32), channels=3, num_classes=10):
    """The seed CNN, compiled with Adam and categorical cross-entropy (softmax fused into the loss)."""
    from tinyseg.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from tinyseg.models.sequential import Sequential
    from tinyseg.optimizers import Adam

    model = Sequential([
        Conv2D(32, 3, activation="relu", input_shape=tuple(input_hw) + (channels,)), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"),
        Flatten(), Dense(64, activation="relu"), Dense(num_classes, activation="softmax")])
    model.compile(Adam(), "categorical_crossentropy")
    return model


def seed_cnn_data(batch, input_hw=(32, 32), channels=3, num_classes=10, seed=0):
    """x (batch, H, W, C) float32 in [0, 1), y (batch, num_classes) one-hot float32."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch,) + tuple(input_hw) + (channels,), dtype=np.float32)
    y = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, batch)]
    return x, y


def unet(input_shape=(128, 128, 3), num_classes=4, depth=3, base_filters=16):
    """tinyseg's UNet with batch norm and Conv2DTranspose upsampling, compiled with Adam and per-pixel
    sparse categorical cross-entropy."""
    from tinyseg.models.unet import UNet
    from tinyseg.optimizers import Adam

    model = UNet(input_shape=tuple(input_shape), num_classes=num_classes, depth=depth,
                 base_filters=base_filters, batch_norm=True, upsampling="transpose")
    model.compile(Adam(), "sparse_categorical_crossentropy")
    return model


def unet_data(batch, input_shape=(128, 128, 3), num_classes=4, seed=0):
    """x (batch, H, W, C) float32, y (batch, H, W) int64 class labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch,) + tuple(input_shape), dtype=np.float32)
    y = rng.integers(0, num_classes, (batch,) + tuple(input_shape[:2]))
    return x, y


def xception_unet(input_shape=(128, 128, 3), num_classes=4, filters=(32, 64, 128, 256)):
    """The Xception-style U-Net of keras.io's Oxford-pets example (tinyseg/models/xception.py, the functional
    API), compiled with RMSprop and sparse cross-entropy."""
    from tinyseg.models.xception import xception_unet as build
    model = build(tuple(input_shape[:2]), num_classes, filters)
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    return model
