"""The seed program's network (the Keras CIFAR-10 CNN), shared by the tests that need it."""
from tinyseg.layers import Conv2D, Dense, Flatten, MaxPooling2D
from tinyseg.models import Sequential


def seed_cnn(num_classes=10, dtype=None):
    """Conv 32 - pool - conv 64 - pool - conv 64 - flatten - dense 64 - dense num_classes (softmax);
    dtype None means tinyseg.floatx()."""
    return Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3), dtype=dtype),
        MaxPooling2D((2, 2), dtype=dtype),
        Conv2D(64, (3, 3), activation="relu", dtype=dtype),
        MaxPooling2D((2, 2), dtype=dtype),
        Conv2D(64, (3, 3), activation="relu", dtype=dtype),
        Flatten(dtype=dtype),
        Dense(64, activation="relu", dtype=dtype),
        Dense(num_classes, activation="softmax", dtype=dtype),
    ])
