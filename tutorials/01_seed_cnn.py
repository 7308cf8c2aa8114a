"""Tutorial 1: the classic Keras CIFAR-10 CNN, line by line in tinyseg.

The network below is the Keras tutorial's, with only the imports changed. By default it trains for a minute
on tinyseg's built-in shapes (circle / square / triangle, no download); give `--cifar10 PATH` (the
'cifar-10-python.tar.gz' archive or its extracted 'cifar-10-batches-py' folder) to train on CIFAR-10, and
`--full` for the tutorial's full 10 epochs on all of it.

It draws: the loss and accuracy curves, a few test images with their predicted class, and the 32 filters of
the first convolution (what the network looks for first).

    python tutorials/01_seed_cnn.py                   # about a minute, built-in shapes
    python tutorials/01_seed_cnn.py --cifar10 ~/data/cifar-10-python.tar.gz --full
"""
import argparse
import os
import time


from tinyseg import plotting, set_random_seed
from tinyseg.layers import Conv2D, Dense, Flatten, MaxPooling2D
from tinyseg.models import Sequential
from tinyseg.utils import to_categorical


def load_data(args):
    """Images as float32 in [0, 1], labels one-hot (categorical_crossentropy wants one-hot targets)."""
    if args.cifar10:
        from tinyseg.datasets.cifar10 import CLASS_NAMES, load_cifar10
        (x_train, y_train), (x_test, y_test) = load_cifar10(args.cifar10)
        if not args.full:                                   # a quick look: 5000 training images
            x_train, y_train, x_test, y_test = x_train[:5000], y_train[:5000], x_test[:1000], y_test[:1000]
        x_train, x_test = x_train.astype("float32") / 255, x_test.astype("float32") / 255
        class_names = CLASS_NAMES
    else:
        from tinyseg.datasets.shapes import CLASS_NAMES, load_shapes
        n_train, n_test = (64, 32) if args.tiny else (10000, 1000)
        # Large, clearly coloured shapes on a plain background: the class is in the outline alone, which this
        # small CNN learns in three epochs (the segmentation tutorial uses the harder textured default).
        (x_train, y_train), (x_test, y_test) = load_shapes(n_train, n_test, size=32, task="classification",
                                                           seed=args.seed, scale=(0.4, 0.5), texture=0.0,
                                                           min_contrast=0.5, noise=0.02)
        class_names = CLASS_NAMES
    k = len(class_names)
    # CIFAR-10's labels are integers of shape (N, 1): one-hot them, as the Keras tutorial must too
    return x_train, to_categorical(y_train, k), x_test, to_categorical(y_test, k), class_names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar10", metavar="PATH", help="CIFAR-10 archive or folder (default: built-in shapes)")
    parser.add_argument("--full", action="store_true", help="10 epochs on the whole data set")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    parser.add_argument("--tiny", action="store_true", help="a few seconds, for tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("tutorial-output", "01_seed_cnn"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    set_random_seed(args.seed)

    x_train, y_train, x_test, y_test, class_names = load_data(args)
    print(f"training on {len(x_train)} images {x_train.shape[1:]}, testing on {len(x_test)}")

    # --- the seed program: the Keras CIFAR-10 CNN --------------------------------------------------------
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(Flatten())
    model.add(Dense(64, activation='relu'))
    model.add(Dense(len(class_names), activation='softmax'))
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    model.summary()
    epochs = args.epochs or (1 if args.tiny else 10 if args.full else 3)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_data=(x_test, y_test))
    print(f"trained {epochs} epochs in {time.perf_counter() - start:.1f}s")
    # ----------------------------------------------------------------------------------------------------

    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f}, test accuracy {acc:.4f}")

    plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="seed CNN")
    probs = model.predict(x_test[:16])
    titles = [f"{class_names[p]}{'' if p == t else ' (x)'}"
              for p, t in zip(probs.argmax(1), y_test[:16].argmax(1))]
    plotting.plot_image_grid(x_test[:16], os.path.join(args.out, "predictions.png"), titles=titles,
                             suptitle="predicted class ((x): wrong)")
    kernel = model.layers[0].params["kernel"]                 # (3, 3, 3, 32): one RGB 3x3 patch per filter
    plotting.plot_image_grid([kernel[..., f] for f in range(kernel.shape[-1])],
                             os.path.join(args.out, "filters.png"), suptitle="first-layer filters")
    print(f"wrote curves.png, predictions.png, filters.png to {args.out}/")
    return history


if __name__ == "__main__":
    main()
