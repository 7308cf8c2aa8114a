"""Data sets.

    shapes    load_shapes(): circles, squares and triangles drawn on the fly; no download, seeded, fast
              (start here). Returns ((x_train, y_train), (x_val, y_val)), as Keras's load_data() does.
    folder    load_image_folder(): your own images and masks from two folders -> (x, masks, names); plus
              random_flip_rotate() augmentation and train_val_split()
    cifar10   load_cifar10(): CIFAR-10 from a local copy of the official archive, unpickled safely
              -> ((x_train, y_train), (x_test, y_test)), as keras.datasets.cifar10.load_data()

Images are channels-last, (N, H, W, C); segmentation masks are (N, H, W) of class indices.
"""
from . import cifar10, folder, shapes
from .cifar10 import load_cifar10
from .folder import (load_image, load_image_folder, load_mask, random_flip_rotate, read_image, resize_image,
                     resize_mask, save_image_png, save_mask_png, train_val_split)
from .shapes import generate_shapes, load_shapes

SHAPES_CLASS_NAMES = shapes.CLASS_NAMES
CIFAR10_CLASS_NAMES = cifar10.CLASS_NAMES

__all__ = ["cifar10", "folder", "shapes", "load_cifar10", "load_image", "load_image_folder", "load_mask",
           "random_flip_rotate", "read_image", "resize_image", "resize_mask", "save_image_png", "save_mask_png",
           "train_val_split", "generate_shapes", "load_shapes", "SHAPES_CLASS_NAMES", "CIFAR10_CLASS_NAMES"]
