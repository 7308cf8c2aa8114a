"""Tutorial 2: a U-Net from scratch segments the built-in shapes, pixel by pixel.

Every pixel gets a class: background, circle, square or triangle. The U-Net's encoder shrinks the image to
see whole shapes; its decoder grows it back, and the skip connections hand it the fine detail that pooling
threw away. The script draws: input | true mask | predicted mask, the loss and IoU curves, the confusion
matrix, and the feature maps of the first encoder block for one image.

    python tutorials/02_unet_on_shapes.py            # about two minutes on 2 cores
"""
import argparse
import os
import time

from tinyseg import plotting, set_random_seed
from tinyseg.datasets import load_shapes, random_flip_rotate
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.losses import CEDiceLoss
from tinyseg.metrics import ConfusionMatrix, format_table
from tinyseg.models.unet import UNet
from tinyseg.optimizers import Adam


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--tiny", action="store_true", help="a few seconds, for tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("tutorial-output", "02_unet_on_shapes"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    set_random_seed(args.seed)

    n_train, n_val, size, epochs = (32, 8, 32, 1) if args.tiny else (2000, 200, 32, args.epochs)
    (x, y), (xv, yv) = load_shapes(n_train, n_val, size=size, seed=args.seed)
    print(f"images {x.shape}, masks {y.shape} with classes {SEGMENTATION_CLASS_NAMES}")

    # depth 2: 32 -> 16 -> 8 pixels, enough context for shapes a third of the image wide
    model = UNet(input_shape=x.shape[1:], num_classes=len(SEGMENTATION_CLASS_NAMES), depth=2, base_filters=16)
    model.compile(optimizer=Adam(3e-3), loss=CEDiceLoss(), metrics=["accuracy", "mean_iou"])
    model.summary()
    start = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=16, validation_data=(xv, yv), augment=random_flip_rotate)
    print(f"trained in {time.perf_counter() - start:.0f}s")

    pred = model.predict(xv).argmax(axis=-1)
    result = ConfusionMatrix(len(SEGMENTATION_CLASS_NAMES)).update(yv, pred).result()
    print(format_table(result, SEGMENTATION_CLASS_NAMES))

    plotting.plot_segmentation_grid(xv, yv, pred, os.path.join(args.out, "predictions.png"),
                                    SEGMENTATION_CLASS_NAMES)
    plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="U-Net")
    plotting.plot_confusion_matrix(result["confusion_matrix"], SEGMENTATION_CLASS_NAMES,
                                   os.path.join(args.out, "confusion_matrix.png"))
    # what the first block sees: run the encoder's first layers on one image
    h = xv[:1]
    for layer in model.encoders[0]:
        h = layer.forward(h)
    plotting.plot_image_grid([h[0, :, :, c] for c in range(h.shape[-1])],
                             os.path.join(args.out, "feature_maps.png"), suptitle="first encoder block")
    print(f"wrote predictions.png, curves.png, confusion_matrix.png, feature_maps.png to {args.out}/")
    return result


if __name__ == "__main__":
    main()
