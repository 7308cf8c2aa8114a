"""Preprocessing layers: deterministic changes of an image's values or size, as the first layers of a model.

    Rescaling(scale, offset)     y = x * scale + offset                          dx = dy * scale
    CenterCrop(height, width)    y = x[:, t : t + height, l : l + width, :]      dx = dy zero-padded back
                                 t = (H - height) // 2,  l = (W - width) // 2
    Resizing(height, width)      y = A_h x A_w^T per image and channel           dx = A_h^T dy A_w

Resizing samples the input at half-pixel centres (as Keras, PyTorch's F.interpolate with
align_corners=False, and UpSampling2D's bilinear mode in kernels/upsampling.py do). Along one axis of input
size n and output size m, with scale s = n / m, output index i reads

    bilinear:  src = max((i + 0.5) * s - 0.5, 0),  i0 = floor(src),  i1 = min(i0 + 1, n - 1),  t = src - i0
               taps: weight 1 - t on i0 and t on i1          (UpSampling2D's formula, with s = 1 / factor)
    nearest:   i0 = min(floor((i + 0.5) * s), n - 1),  weight 1      (PyTorch's 'nearest-exact')

Row i of the (m, n) matrix A holds output i's taps, so resizing is two matrix products, one per axis, and its
backward the two transposed products. With crop_to_aspect_ratio=True, the largest centred window of the
target's aspect ratio is cut out first (Keras's rule), and the backward pads the gradient back.

Segmentation. Every image layer here and in augmentation.py also takes Keras's dictionary,
layer({"images": x, "segmentation_masks": m}), and returns one: the masks (N, H, W) or (N, H, W, k), of any
dtype, get the same geometric change as the images, read by nearest neighbour (a class id is never mixed
with its neighbour's); value changes (Rescaling, RandomContrast, RandomBrightness) leave masks alone.
"""
import numpy as np

from ..validation import flag, is_real_number, one_of, positive_int
from .base import Layer
from .geometry import check_image_shape
from .reshaping import Cropping2D, crop2d, zero_pad2d

INTERPOLATIONS = ("bilinear", "nearest")


# --- the interpolation matrices ----------------------------------------------------------------------------
def resize_matrix(n, m, interpolation, dtype="float64"):
    """A (m, n): row i holds the taps with which output i (of m) reads the inputs (of n) along one axis."""
    s = n / m
    i = np.arange(m)
    a = np.zeros((m, n), dtype=dtype)
    if interpolation == "nearest":
        a[i, np.minimum(np.floor((i + 0.5) * s).astype(np.int64), n - 1)] = 1
        return a
    src = np.maximum((i + 0.5) * s - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    t = src - i0
    a[i, i0] += 1 - t
    a[i, i1] += t               # a second statement: at the last row i1 == i0 and the two weights add up
    return a


def resize_images(x, a_h, a_w):
    """y[n, i, j, c] = sum_{h, w} A_h[i, h] x[n, h, w, c] A_w[j, w]: (N, H, W, C) -> (N, m_h, m_w, C)."""
    return np.einsum("ih,nhwc,jw->nijc", a_h, x, a_w, optimize=True)


def resize_images_backward(grad, a_h, a_w):
    """dx = A_h^T dy A_w per image and channel: (N, m_h, m_w, C) -> (N, H, W, C)."""
    return np.einsum("ih,nijc,jw->nhwc", a_h, grad, a_w, optimize=True)


def nearest_rows(n, m):
    """The input index each output index reads by nearest neighbour (the one tap of resize_matrix)."""
    return np.minimum(np.floor((np.arange(m) + 0.5) * (n / m)).astype(np.int64), n - 1)


def aspect_crop(h, w, height, width):
    """((top, bottom), (left, right)): the largest centred window of an (h, w) image with the aspect ratio
    height : width (Keras's crop_to_aspect_ratio and smart_resize rule, integer arithmetic as Keras's)."""
    ch = max(min(h, int(float(w * height) / width)), 1)
    cw = max(min(w, int(float(h * width) / height)), 1)
    top, left = int(float(h - ch) / 2), int(float(w - cw) / 2)
    return (top, h - ch - top), (left, w - cw - left)


# --- what every image layer shares: Keras's {"images", "segmentation_masks"} dictionary ----------------------
class ImageLayer(Layer):
    """A layer on images (N, H, W, C) that also transforms segmentation masks given beside them.

    Subclasses give forward/backward for the images and `transform_masks(masks)`, which applies the
    geometric change of the last forward to masks (nearest neighbour), or returns them as they are."""

    def __call__(self, x, training=False):
        if isinstance(x, dict):
            return self.call_on_dict(x, training)
        return super().__call__(x, training=training)

    def call_on_dict(self, data, training):
        unknown = set(data) - {"images", "segmentation_masks"}
        if "images" not in data or unknown:
            raise ValueError(f"{self.name}: a dictionary input needs the key 'images' and may have "
                             f"'segmentation_masks', got keys {sorted(data)}")
        images = data["images"]
        out = {"images": self.forward(images, training=training)}
        if "segmentation_masks" in data:
            masks = np.asarray(data["segmentation_masks"])
            if masks.ndim not in (3, 4) or masks.shape[:3] != images.shape[:3]:
                raise ValueError(f"{self.name}: segmentation_masks must have shape (N, H, W) or (N, H, W, k) "
                                 f"of the images' N, H, W {images.shape[:3]}, got {masks.shape}")
            squeeze = masks.ndim == 3
            moved = self.transform_masks(masks[..., None] if squeeze else masks)
            out["segmentation_masks"] = moved[..., 0] if squeeze else moved
        return out

    def transform_masks(self, masks):
        return masks

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        return input_shape


class Rescaling(ImageLayer):
    """Keras's `Rescaling(scale, offset=0.0)`: y = x * scale + offset; dx = dy * scale.

    scale, offset: real numbers, or one per channel (sequences of length C). Shapes: x (N, H, W, C) -> y the
    same. Rescaling(1 / 255) maps 8-bit pixel values to [0, 1]; Rescaling(1 / 127.5, offset=-1) to [-1, 1].
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = self._number_or_channels(scale, "scale")
        self.offset = self._number_or_channels(offset, "offset")

    def _number_or_channels(self, value, argument):
        if is_real_number(value):
            return float(value)
        values = np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        if values is None or values.ndim != 1 or values.dtype.kind not in "fiu" or not np.all(np.isfinite(values)):
            raise ValueError(f"{self.name}: {argument} must be a real number or a list of them (one per channel), "
                             f"got {value!r}")
        return [float(v) for v in values]

    def compute_output_shape(self, input_shape):
        for argument in ("scale", "offset"):
            value = getattr(self, argument)
            if isinstance(value, list) and len(value) != input_shape[-1]:
                raise ValueError(f"{self.name}: {argument} has {len(value)} values but the input has "
                                 f"{input_shape[-1]} channels (input shape (batch,) + {tuple(input_shape)})")
        return input_shape

    def accepts_size(self, shape):
        return len(shape) == len(self.input_shape) and shape[-1] == self.input_shape[-1]

    def forward(self, x, training=False):
        self.check_input(x)
        return x * np.asarray(self.scale, self.dtype) + np.asarray(self.offset, self.dtype)

    def backward(self, grad):
        self.check_grad(grad)
        return grad * np.asarray(self.scale, self.dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class CenterCrop(ImageLayer, Cropping2D):
    """Keras's `CenterCrop(height, width)`: the central height x width window of every image.

    Shapes: x (N, H, W, C) -> y (N, height, width, C), H >= height and W >= width; the window starts at row
    (H - height) // 2 and column (W - width) // 2. It is a Cropping2D whose cropping is worked out from each
    input's size: forward and backward (dy zero-padded back to (N, H, W, C)) are Cropping2D's.
    (Keras resizes an image smaller than the window instead; tinyseg refuses it, naming the sizes.)
    """

    geometry_attributes = ImageLayer.geometry_attributes + ("cropping",)

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = positive_int(height, f"{self.name}: height")
        self.width = positive_int(width, f"{self.name}: width")

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        if h < self.height or w < self.width:
            raise ValueError(f"{self.name}: cannot crop a {self.height} x {self.width} window out of images of "
                             f"{h} x {w} (input shape (batch, {h}, {w}, {c})); use Resizing to enlarge them")
        top, left = (h - self.height) // 2, (w - self.width) // 2
        self.cropping = ((top, h - self.height - top), (left, w - self.width - left))
        return self.height, self.width, c

    def transform_masks(self, masks):
        return crop2d(masks, self.cropping)

    def get_config(self):
        config = {**super().get_config(), "height": self.height, "width": self.width}
        del config["cropping"]                  # worked out from each input, not an argument
        return config


class Resizing(ImageLayer):
    """Keras's `Resizing(height, width, interpolation='bilinear', crop_to_aspect_ratio=False)`.

    Shapes: x (N, H, W, C), any H and W -> y (N, height, width, C). interpolation: 'bilinear' or 'nearest'
    (formulas in the module docstring). crop_to_aspect_ratio: first cut the largest centred window with the
    aspect ratio height : width, so the image is not stretched. Gradient: dx = A_h^T dy A_w (then padded back
    to the uncropped size).
    """

    geometry_attributes = ImageLayer.geometry_attributes + ("crops",)

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, **kwargs):
        super().__init__(**kwargs)
        self.height = positive_int(height, f"{self.name}: height")
        self.width = positive_int(width, f"{self.name}: width")
        self.interpolation = one_of(interpolation, f"{self.name}: interpolation", INTERPOLATIONS)
        self.crop_to_aspect_ratio = flag(crop_to_aspect_ratio, f"{self.name}: crop_to_aspect_ratio")

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        self.crops = aspect_crop(h, w, self.height, self.width) if self.crop_to_aspect_ratio else ((0, 0), (0, 0))
        return self.height, self.width, c

    def _matrices(self, h, w):
        """A_h (height, h') and A_w (width, w') for the cropped input size h' x w'."""
        (top, bottom), (left, right) = self.crops
        return (resize_matrix(h - top - bottom, self.height, self.interpolation, self.dtype),
                resize_matrix(w - left - right, self.width, self.interpolation, self.dtype))

    def forward(self, x, training=False):
        self.check_input(x)
        a_h, a_w = self._matrices(*x.shape[1:3])
        return resize_images(crop2d(x, self.crops), a_h, a_w)

    def backward(self, grad):
        self.check_grad(grad)
        a_h, a_w = self._matrices(*self.input_shape[:2])
        return zero_pad2d(resize_images_backward(grad, a_h, a_w), self.crops)

    def transform_masks(self, masks):
        m = crop2d(masks, self.crops)
        rows, cols = nearest_rows(m.shape[1], self.height), nearest_rows(m.shape[2], self.width)
        return m[:, rows][:, :, cols]

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio}
