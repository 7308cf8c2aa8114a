"""Augmentation layers: a random change of every training image, and none at inference.

    forward(x, training=True)    draw a transformation T (one per image, RandomCrop one per batch), y = T(x)
    forward(x, training=False)   y = x  (RandomCrop: the deterministic centre crop and resize, as Keras)

In a model, fit runs the layers with training=True and predict/evaluate with training=False. Called
directly on arrays, layer(x) augments (training=True), as Keras's layers do in a data pipeline;
layer(x, training=False) does not.
    backward(dy)                 dx = T^T(dy), the same T: every T here is linear in x, or clipped-linear

    RandomFlip(mode)                   y = x reversed along W ('horizontal') and/or H ('vertical'); dx likewise
    RandomCrop(height, width)          y = x[:, t:t + height, l:l + width];  dx = dy zero-padded back
    RandomRotation(factor)             angle ~ U(lo, hi) * 2 pi, about the centre        } sampled at an affine
    RandomZoom(height_factor, ...)     zoom ~ 1 + U(lo, hi) per axis (> 1: zoom out)      } map of the output
    RandomTranslation(h_factor, ...)   shift ~ U(lo, hi) * H rows and * W columns         } pixels (affine.py)
    RandomContrast(factor)             y = clip((x - m) c + m, range),  c ~ U(1 - lo, 1 + hi),  m = mean over H, W
                                       dx = c g + (1 - c) mean_HW(g),   g = dy where the clip let x through
    RandomBrightness(factor)           y = clip(x + d (hi - lo), range),  d ~ U(lo, hi);  dx = g (as above)

Seeds. A layer made with seed=s draws from its own generator, numpy.random.default_rng(s), so it draws the
same sequence in every run (reseed() restarts it); with seed=None it draws from tinyseg.backend.rng(),
which tinyseg.set_random_seed seeds. What a layer draws depends only on the batch size (and the image
size), never on the channels; so for segmentation, either call one layer on Keras's dictionary
{"images": x, "segmentation_masks": m} (one T for both; masks by nearest neighbour, never mixed), or give
the image's layer and the mask's layer the same seed (and interpolation='nearest' to the mask's).

Differences from Keras 3 on purpose: RandomFlip('horizontal_and_vertical') draws the two flips
independently (Keras draws one coin for both, so it never flips one way only); RandomContrast(f) draws c in
[1 - f, 1 + f] as Keras documents (Keras 3.15's code draws in [1, 1 + f]).
"""
import numpy as np

from ..validation import is_real_number, one_of, positive_int, real_number
from . import affine
from .geometry import check_same_batch
from .preprocessing import ImageLayer, Resizing
from .random_state import SeededGenerator
from .reshaping import crop2d, zero_pad2d


def factor_range(value, argument, low=-1.0, high=1.0, symmetric_low=None):
    """Keras's factor: a number f -> (-|f|, |f|) (or (symmetric_low, |f|)), a pair -> sorted; within [low, high]."""
    if is_real_number(value):
        f = abs(real_number(value, argument, low, high))
        return (-f if symmetric_low is None else symmetric_low(f)), f
    if isinstance(value, (list, tuple)) and len(value) == 2:
        pair = sorted(real_number(v, argument, low, high) for v in value)
        return pair[0], pair[1]
    raise ValueError(f"{argument} must be a number or a pair (lower, upper) of numbers in [{low}, {high}], "
                     f"got {value!r}")


class RandomLayer(SeededGenerator, ImageLayer):
    """What the augmentation layers share: the seed, the generator, and the forward/backward around T.

    A subclass gives draw(shape) -> T, apply(x, T), apply_backward(grad, T), and apply_masks(masks, T)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.init_generator(seed)

    def __call__(self, x, training=True):
        """layer(x) on arrays augments, as Keras's augmentation layers do when called directly (in a data
        pipeline); in a model, fit passes training=True and predict/evaluate training=False."""
        return super().__call__(x, training=training)

    def forward(self, x, training=False):
        self.check_input(x)
        t = self.draw(x.shape) if training else None
        self.save_for_backward(t=t, x_shape=x.shape)
        return x if t is None else self.apply(x, t)

    def backward(self, grad):
        saved = self.saved_for_backward()
        self.check_grad(grad)
        check_same_batch(self, grad, saved.x_shape)
        return grad.copy() if saved.t is None else self.apply_backward(grad, saved.t)

    def transform_masks(self, masks):
        t = self.saved.t
        return masks if t is None else self.apply_masks(masks, t)

    def apply_masks(self, masks, t):
        return masks                                # value changes leave masks alone

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(RandomLayer):
    """Keras's `RandomFlip(mode='horizontal_and_vertical', seed=None)`: each training image is reversed
    left-right ('horizontal') and/or top-bottom ('vertical'), each with probability 1/2. A flip is its own
    inverse, so the backward flips dy the same way. Shapes: x (N, H, W, C) -> y the same."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = one_of(mode, f"{self.name}: mode", self.MODES)

    def draw(self, shape):
        coins = self.generator().random((shape[0], 2)) < 0.5            # (flip left-right, flip top-bottom)
        coins[:, 0] &= self.mode != "vertical"
        coins[:, 1] &= self.mode != "horizontal"
        return coins

    def apply(self, x, t):
        y = x.copy()
        y[t[:, 0]] = y[t[:, 0], :, ::-1]
        y[t[:, 1]] = y[t[:, 1], ::-1]
        return y

    apply_backward = apply_masks = apply

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomCrop(RandomLayer):
    """Keras's `RandomCrop(height, width, seed=None)`: in training, one random height x width window per batch
    (top ~ U{0..H - height}, left ~ U{0..W - width}); at inference, and for images not larger than the window,
    the deterministic Resizing(height, width, crop_to_aspect_ratio=True). Shapes: x (N, H, W, C) ->
    y (N, height, width, C)."""

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.height = positive_int(height, f"{self.name}: height")
        self.width = positive_int(width, f"{self.name}: width")
        self.resizing = Resizing(self.height, self.width, crop_to_aspect_ratio=True, name=f"{self.name}/resizing",
                                 dtype=self.dtype)

    def inner_layers(self):
        return [self.resizing]

    def compute_output_shape(self, input_shape):
        return self.resizing.compute_output_shape(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        h, w = x.shape[1:3]
        if not training or h <= self.height or w <= self.width:       # Keras's rule: room on both axes
            self.save_for_backward(t=None, x_shape=x.shape)
            return self.resizing.forward(x)
        top = int(self.generator().integers(0, h - self.height + 1))
        left = int(self.generator().integers(0, w - self.width + 1))
        t = ((top, h - self.height - top), (left, w - self.width - left))
        self.save_for_backward(t=t, x_shape=x.shape)
        return crop2d(x, t)

    def backward(self, grad):
        saved = self.saved_for_backward()
        self.check_grad(grad)
        return self.resizing.backward(grad) if saved.t is None else zero_pad2d(grad, saved.t)

    def transform_masks(self, masks):
        t = self.saved.t
        return self.resizing.transform_masks(masks) if t is None else crop2d(masks, t)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class _AffineLayer(RandomLayer):
    """Rotation, zoom, translation: T is one affine map per image, sampled as affine.py describes."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.fill_mode = one_of(fill_mode, f"{self.name}: fill_mode", affine.FILL_MODES)
        self.interpolation = one_of(interpolation, f"{self.name}: interpolation", affine.INTERPOLATIONS)
        self.fill_value = real_number(fill_value, f"{self.name}: fill_value")

    def draw(self, shape):
        return self.matrices(self.generator(), *shape[:3])

    def apply(self, x, t):
        return affine.sample(x, affine.affine_taps(t, *x.shape[1:3], self.interpolation, self.fill_mode),
                             self.fill_mode, self.fill_value)

    def apply_backward(self, grad, t):
        taps = affine.affine_taps(t, *grad.shape[1:3], self.interpolation, self.fill_mode)
        return affine.sample_backward(grad, taps, self.fill_mode, self.input_shape)

    def apply_masks(self, masks, t):
        taps = affine.affine_taps(t, *masks.shape[1:3], "nearest", self.fill_mode)
        return affine.sample_nearest(masks, taps, self.fill_mode, self.fill_value)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


class RandomRotation(_AffineLayer):
    """Keras's `RandomRotation(factor, fill_mode='reflect', interpolation='bilinear', seed=None,
    fill_value=0.0)`: each training image turned about its centre by an angle ~ U(lo, hi) * 2 pi (counter-
    clockwise for a positive angle); factor f means (lo, hi) = (-f, f), a pair (lo, hi) as it is, in [-1, 1]."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         **kwargs)
        self.factor = factor_range(factor, f"{self.name}: factor")

    def matrices(self, rng, n, h, w):
        return affine.rotation_matrices(rng.uniform(*self.factor, size=n) * 2 * np.pi, h, w)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_AffineLayer):
    """Keras's `RandomZoom(height_factor, width_factor=None, fill_mode='reflect', interpolation='bilinear',
    seed=None, fill_value=0.0)`: each training image read from a region 1 + U(lo, hi) times as tall (and wide:
    width_factor, or the same draw if None) about its centre; a positive factor zooms out, a negative one in.
    Factors in (-1, 1]."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         **kwargs)
        self.height_factor = self._zoom_factor(height_factor, "height_factor")
        self.width_factor = None if width_factor is None else self._zoom_factor(width_factor, "width_factor")

    def _zoom_factor(self, value, argument):
        lo, hi = factor_range(value, f"{self.name}: {argument}")
        if lo <= -1:
            raise ValueError(f"{self.name}: {argument} must lie in (-1, 1] (a zoom of 1 + factor must stay "
                             f"positive), got {value!r}")
        return lo, hi

    def matrices(self, rng, n, h, w):
        height_zoom = 1 + rng.uniform(*self.height_factor, size=n)
        width_zoom = height_zoom if self.width_factor is None else 1 + rng.uniform(*self.width_factor, size=n)
        return affine.zoom_matrices(height_zoom, width_zoom, h, w)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomTranslation(_AffineLayer):
    """Keras's `RandomTranslation(height_factor, width_factor, fill_mode='reflect', interpolation='bilinear',
    seed=None, fill_value=0.0)`: each training image moved U(lo, hi) * H rows down and U(lo, hi) * W columns
    right (negative: up, left); factors in [-1, 1]."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         **kwargs)
        self.height_factor = factor_range(height_factor, f"{self.name}: height_factor")
        self.width_factor = factor_range(width_factor, f"{self.name}: width_factor")

    def matrices(self, rng, n, h, w):
        dy = rng.uniform(*self.height_factor, size=n) * h
        dx = rng.uniform(*self.width_factor, size=n) * w
        return affine.translation_matrices(dy, dx)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class _ValueLayer(RandomLayer):
    """Contrast, brightness: T changes values (then clips them to value_range), not positions."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        ok = isinstance(value_range, (list, tuple)) and len(value_range) == 2 and all(
            is_real_number(v) and np.isfinite(v) for v in value_range) and value_range[0] < value_range[1]
        if not ok:
            raise ValueError(f"{self.name}: value_range must be a pair (low, high) of finite numbers, low < high, "
                             f"got {value_range!r}")
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def clip(self, z):
        """(clip(z, low, high), where the clip let z through): the gradient flows only there."""
        low, high = self.value_range
        return np.clip(z, low, high), (z >= low) & (z <= high)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


class RandomContrast(_ValueLayer):
    """Keras's `RandomContrast(factor, value_range=(0, 255), seed=None)`: per training image and channel,
    y = clip((x - m) c + m, value_range), m the channel's mean over H and W, c ~ U(1 - lo, 1 + hi); factor f
    in [0, 1] means lo = hi = f, a pair (lo, hi) as it is. Gradient in the module docstring."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range=value_range, seed=seed, **kwargs)
        self.factor = factor_range(factor, f"{self.name}: factor", low=0.0, symmetric_low=lambda f: f)

    def draw(self, shape):
        return self.generator().uniform(1 - self.factor[0], 1 + self.factor[1], size=(shape[0], 1, 1, 1))

    def apply(self, x, c):
        m = x.mean(axis=(1, 2), keepdims=True)
        y, self.saved.through = self.clip((x - m) * c.astype(x.dtype) + m)
        return y

    def apply_backward(self, grad, c):
        g = grad * self.saved.through
        return c * g + (1 - c) * g.mean(axis=(1, 2), keepdims=True)


class RandomBrightness(_ValueLayer):
    """Keras's `RandomBrightness(factor, value_range=(0, 255), seed=None)`: per training image,
    y = clip(x + d (high - low), value_range), d ~ U(lo, hi); factor f in [-1, 1] means (-f, f), a pair as it
    is. Gradient: dy where the clip let x through, 0 elsewhere."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range=value_range, seed=seed, **kwargs)
        self.factor = factor_range(factor, f"{self.name}: factor")

    def draw(self, shape):
        return self.generator().uniform(*self.factor, size=(shape[0], 1, 1, 1))

    def apply(self, x, d):
        low, high = self.value_range
        y, self.saved.through = self.clip(x + (d * (high - low)).astype(x.dtype))
        return y

    def apply_backward(self, grad, d):
        return grad * self.saved.through
