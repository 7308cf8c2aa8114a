"""The data of a `tinyseg train --data IMAGES MASKS` run: two folders in, checked arrays (or file lists) out.

    x, y, xv, yv, size, info, palette, label_map = load_training_folders(args, depth)

x, y are uint8 arrays (N, H, W, C) and (N, H, W), or with args.lazy the lists of file paths (read batch by
batch by pipeline.SegmentationDataset). Before any training: every label value is checked against the
classes (the error names the file), masks that are all void are refused, the image size must be divisible
by 2**depth, and the validation set is --val-data or a seeded --val-fraction of the files.

`args` holds the train command's settings (data, val_data, size, lazy, ignore_index, palette, class_names,
num_classes, val_fraction, seed), as tinyseg.cli parses them.
"""
import os

import numpy as np

from .label_info import label_info, names_and_colours
from .labels import binary_map, check_masks, infer_num_classes, iter_masks


def load_training_folders(args, depth, size=None):
    """(x, y, x_val, y_val, size, LabelInfo, palette or None, label_map or None); size (H, W) or None: the
    files' own size."""
    from ..inference import check_multiple, nearest_multiple
    from . import camvid
    m = 2 ** depth
    if size is not None:
        check_multiple(size, m, "size", "--size")
    names, colours, palette = names_and_colours(args.palette, args.class_names, args.data)
    x, y, files = _folder_split(args.data[0], args.data[1], size, args, palette)
    if size is None:
        size = tuple(_first_size(x))
        if size[0] % m or size[1] % m:
            nearest = tuple(nearest_multiple(s, m) for s in size)
            raise ValueError(f"the images are {size[0]} x {size[1]}, not divisible by 2**depth = {m} "
                             f"(--depth {depth}); pass --size {nearest[0]} {nearest[1]} to resize them")
    label_map = binary_map(y, size, palette, args.ignore_index, 2) if args.lazy else None
    inferred = infer_num_classes(iter_masks(y, size, palette, label_map), args.ignore_index)
    info = label_info(names, colours, args.num_classes, args.ignore_index, inferred)
    scope = "the data set has" if args.num_classes or names else None
    check_masks(y, files, info.num_classes, args.ignore_index, "training labels", scope, size, palette, label_map)
    if args.val_data is not None:
        xv, yv, vfiles = _folder_split(args.val_data[0], args.val_data[1], size, args, palette)
        check_masks(yv, vfiles, info.num_classes, args.ignore_index, "--val-data labels",
                    "the training labels have", size, palette, label_map)
    else:
        x, y, xv, yv = _split(x, y, args.val_fraction, args.seed)
    if camvid.looks_like_camvid(*args.data) and args.ignore_index is None:
        print("note: CamVid's label 11 is Unlabelled (void); pass --ignore-index 11 to leave it out, as the "
              "papers do")
    return x, y, xv, yv, size, info, palette, label_map


def _split(x, y, fraction, seed):
    """Hold out round(N * fraction) samples, seeded: arrays by train_val_split, file lists the same way."""
    from .augment import train_val_split
    if isinstance(x, np.ndarray):
        (x, y), (xv, yv) = train_val_split(x, y, fraction, seed=seed)
        return x, y, xv, yv
    cut = max(1, int(round(len(x) * fraction)))
    if not 0 < cut < len(x):
        raise ValueError(f"--val-fraction {fraction} of {len(x)} images leaves {cut} for validation and "
                         f"{len(x) - cut} for training; each needs at least one (or give --val-data)")
    order = np.random.default_rng(seed).permutation(len(x))
    return [x[i] for i in order[cut:]], [y[i] for i in order[cut:]], [x[i] for i in order[:cut]], \
        [y[i] for i in order[:cut]]


def _folder_split(images_dir, masks_dir, size, args, palette):
    """(images, masks, mask file names): uint8 arrays, or with --lazy the lists of paths."""
    from .folder import load_image_folder, pair_files
    names, image_paths, mask_paths = pair_files(images_dir, masks_dir)
    files = [os.path.join(os.path.basename(os.path.normpath(masks_dir)), p.name) for p in mask_paths]
    if args.lazy:
        return [str(p) for p in image_paths], [str(p) for p in mask_paths], files
    mode = "index" if args.ignore_index is not None or palette is not None else "auto"
    x, y, _ = load_image_folder(images_dir, masks_dir, size=size, mask_mode=mode, dtype="uint8", palette=palette,
                                ignore_index=args.ignore_index)
    return x, y, files


def _first_size(images):
    if isinstance(images, np.ndarray):
        return images.shape[1:3]
    from PIL import Image
    with Image.open(images[0]) as im:
        return im.size[1], im.size[0]
