"""tinyseg.ops.image: keras.ops.image.resize (the formulas are in tinyseg/layers/preprocessing.py).

On a symbolic tensor it records a Resizing layer; on an array of images (N, H, W, C) it computes at once."""
import numpy as np

from ..graph import is_symbolic


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False):
    """images (N, H, W, C) resized to size = (height, width): 'bilinear' or 'nearest', half-pixel centres."""
    from ..layers.preprocessing import Resizing, aspect_crop, resize_images, resize_matrix
    from ..layers.reshaping import crop2d
    if antialias:
        raise ValueError("ops.image.resize: antialias=True is not supported (tinyseg resizes without "
                         "antialiasing, as Keras's default)")
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise ValueError(f"ops.image.resize: size must be (height, width), got {size!r}")
    layer = Resizing(*size, interpolation=interpolation, crop_to_aspect_ratio=crop_to_aspect_ratio,
                     dtype=images.dtype) if is_symbolic(images) else None
    if layer is not None:
        return layer(images)
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype.kind != "f":
        raise ValueError(f"ops.image.resize: images must be a float array (N, H, W, C), got {images.dtype} "
                         f"{images.shape}")
    h, w = images.shape[1:3]
    crops = aspect_crop(h, w, *size) if crop_to_aspect_ratio else ((0, 0), (0, 0))
    x = crop2d(images, crops)
    return resize_images(x, resize_matrix(x.shape[1], size[0], interpolation, images.dtype),
                         resize_matrix(x.shape[2], size[1], interpolation, images.dtype))


__all__ = ["resize"]
