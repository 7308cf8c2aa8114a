"""Shapes: a built-in procedural data set of circles, squares and triangles (no download, seeded, fast).

    (x_train, y_train), (x_val, y_val) = load_shapes(n_train=1000, n_val=200, size=32, seed=0)

    x      float32 (N, H, W, C) in [0, 1]
    y      task='segmentation':   uint8 (N, H, W), 0 = background, 1 = circle, 2 = square, 3 = triangle
           task='classification': uint8 (N,),      0 = circle, 1 = square, 2 = triangle (CLASS_NAMES)

How an image is made (all images of a batch at once, with NumPy broadcasting; no loop over pixels):

1. Background: a random base colour, plus a linear ramp in a random direction and smooth random blobs,
   both scaled by `texture` (a coarse 4 x 4 grid of colours, bilinearly interpolated to every pixel).
2. Shapes, drawn one after another, later ones on top (and on top in the mask too): each has a random class,
   a random size, position and rotation, and a random colour. Pixel (i, j) belongs to a shape when its centre
   (y, x) = (i, j) passes the shape's test, with (y0, x0) the shape's centre:

       circle of radius r:                 (x - x0)^2 + (y - y0)^2 <= r^2
       square of half-side s, angle t:     |u| <= s and |v| <= s,   where u, v are x - x0, y - y0 rotated by -t
       triangle of circumradius R:         (x - x0, y - y0) . n_k <= R / 2 for k = 0, 1, 2,
                                           n_k the unit normal of edge k (at angle t + pi + 2 pi k / 3)

   The three kinds have the same area for the same size a (pi r^2 = (2 s)^2 = 3 sqrt(3)/4 R^2 = a^2), so a
   model cannot tell them apart by counting pixels; and colours are drawn the same way for every class, so it
   cannot tell them apart by colour. It has to look at the outline, which is what a small U-Net learns.
   A colour is accepted only if it differs from the background under the shape's centre by at least
   `min_contrast` (root-mean-square over channels), so every shape is visible.
3. Pixel noise: Gaussian with standard deviation `noise`, then everything is clipped to [0, 1].

Shapes are kept entirely inside the image, so in the classification task the one shape is always fully seen.
Train and validation images come from two independent random streams derived from `seed`, so changing
`n_val` does not change the training images.
"""
import numpy as np

from ..validation import ArgumentError, integer

CLASS_NAMES = ["circle", "square", "triangle"]
SEGMENTATION_CLASS_NAMES = ["background"] + CLASS_NAMES   # mask value k is SEGMENTATION_CLASS_NAMES[k]

_CHUNK = 256                    # images rendered at once: bounds memory at _CHUNK * H * W * (a few floats)
_GRID = 4                       # background: a 4 x 4 grid of colours, bilinearly interpolated
_COLOR_CANDIDATES = 16          # colours tried per shape to find one with enough contrast
_MIN_SIZE_PIXELS = 2.0          # a >= 2 pixels, so even the smallest triangle covers at least one pixel centre

# A shape of size a (the square root of its area) has size parameter p = a * _SIZE_PARAM[kind] (radius r,
# half-side s or circumradius R) and reaches a * _CIRCUMRADIUS[kind] from its centre:
#   circle     pi r^2 = a^2              ->  r = a / sqrt(pi)               reaches r
#   square     (2 s)^2 = a^2             ->  s = a / 2                      reaches s sqrt(2) (its corners)
#   triangle   3 sqrt(3) / 4 R^2 = a^2   ->  R = a sqrt(4 / (3 sqrt(3)))    reaches R (its vertices)
_SIZE_PARAM = np.array([1 / np.sqrt(np.pi), 0.5, np.sqrt(4 / (3 * np.sqrt(3)))])
_CIRCUMRADIUS = np.array([1 / np.sqrt(np.pi), 0.5 * np.sqrt(2), np.sqrt(4 / (3 * np.sqrt(3)))])


def load_shapes(n_train=1000, n_val=200, size=32, seed=0, task="segmentation", channels=3, noise=0.05,
                texture=0.3, min_contrast=0.3, max_shapes=3, scale=(0.2, 0.45)):
    """Generate the shapes data set, returned like `keras.datasets.*.load_data()`.

    Parameters
    ----------
    n_train, n_val : number of training and validation images.
    size : int S for S x S images, or (H, W); each side at least 8.
    seed : the same seed gives the same images, bit for bit.
    task : 'segmentation' (1..max_shapes shapes per image, y = masks) or 'classification' (one shape per
        image, y = its class).
    channels : 3 for colour, 1 for grayscale (any positive number works).
    noise : standard deviation of the Gaussian pixel noise.
    texture : strength of the background's ramp and smooth random field (0 = flat background).
    min_contrast : least root-mean-square colour difference between a shape and the background under its centre.
    max_shapes : most shapes per image in the segmentation task.
    scale : (low, high) range of a shape's size sqrt(area) as a fraction of min(H, W).

    Returns
    -------
    (x_train, y_train), (x_val, y_val) with x float32 (N, H, W, channels) in [0, 1] and
        y uint8 (N, H, W) with values 0..3 (segmentation; 0 = background) or uint8 (N,) with values 0..2
        (classification), class k named CLASS_NAMES[k].

    The training set is generate_shapes(n_train, seed=np.random.SeedSequence(seed).spawn(2)[0], ...) and the
    validation set the same with spawn(2)[1]; call generate_shapes to get the masks of classification images.
    """
    if task not in ("segmentation", "classification"):
        raise ValueError(f"load_shapes: task must be 'segmentation' or 'classification', got {task!r}")
    for name, n in (("n_train", n_train), ("n_val", n_val)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"load_shapes: {name} must be a non-negative integer, got {n!r}")
    per_image = (1, 1) if task == "classification" else (1, max_shapes)
    train_seed, val_seed = np.random.SeedSequence(seed).spawn(2)
    out = []
    for n, stream in ((n_train, train_seed), (n_val, val_seed)):
        x, masks, classes = generate_shapes(n, size=size, seed=stream, shapes_per_image=per_image,
                                            channels=channels, noise=noise, texture=texture,
                                            min_contrast=min_contrast, scale=scale)
        y = masks if task == "segmentation" else classes[:, 0].astype(np.uint8)
        out.append((x, y))
    return tuple(out)


def generate_shapes(n, size=32, seed=0, shapes_per_image=(1, 3), channels=3, noise=0.05, texture=0.3,
                    min_contrast=0.3, scale=(0.2, 0.45)):
    """Draw `n` images, their masks and the class of every shape; `load_shapes` is built on this.

    `seed` may be an int, a `numpy.random.SeedSequence` or a `numpy.random.Generator`.
    `shapes_per_image` = (min, max): each image gets a uniformly drawn number of shapes in that range.
    The other parameters are those of `load_shapes`.

    Returns
    -------
    x : float32 (n, H, W, channels) in [0, 1].
    masks : uint8 (n, H, W); 0 = background, k + 1 where shape class k is on top.
    classes : int8 (n, max_shapes); classes[i, m] is the class (0..2) of the m-th shape drawn in image i,
        or -1 if image i has fewer than m + 1 shapes. Shape m is drawn over shapes 0..m-1.
    """
    height, width = _check_size(size)
    lo, hi = (int(v) for v in shapes_per_image)
    if not 1 <= lo <= hi:
        raise ValueError(f"generate_shapes: shapes_per_image must be (min, max) with 1 <= min <= max, "
                         f"got {shapes_per_image!r}")
    if not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"generate_shapes: channels must be a positive integer, got {channels!r}")
    if noise < 0 or texture < 0 or min_contrast < 0:
        raise ValueError("generate_shapes: noise, texture and min_contrast must be >= 0")
    if not 0 < scale[0] <= scale[1] <= 0.5:
        raise ValueError(f"generate_shapes: scale must be (low, high) with 0 < low <= high <= 0.5, got {scale!r}")

    rng = np.random.default_rng(seed)
    x = np.empty((n, height, width, channels), dtype=np.float32)
    masks = np.zeros((n, height, width), dtype=np.uint8)
    classes = np.full((n, hi), -1, dtype=np.int8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        x[start:stop], masks[start:stop], classes[start:stop] = _render(
            rng, stop - start, height, width, channels, (lo, hi), noise, texture, min_contrast, scale)
    return x, masks, classes


def _check_size(size):
    """(height, width) as ints, from one integer for both or a pair of them, each at least 8 pixels."""
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    try:
        if len(pair) == 2:
            return tuple(integer(s, "size", low=8) for s in pair)
    except ArgumentError:
        pass
    raise ArgumentError(f"shapes: size must be an int or (height, width), each at least 8, got {size!r}")


def _render(rng, n, height, width, channels, shapes_per_image, noise, texture, min_contrast, scale):
    """Draw one chunk of n images; see the module docstring for the recipe."""
    # Pixel centres: yy is a column (H, 1), xx a row (1, W); with per-image parameters of shape (n, 1, 1)
    # every expression below broadcasts to (n, H, W) without a Python loop over pixels.
    yy = np.arange(height, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]

    image = _background(rng, n, height, width, channels, texture)

    lo, hi = shapes_per_image
    count = rng.integers(lo, hi + 1, size=n)
    kind = rng.integers(0, 3, size=(n, hi))
    kind[np.arange(hi)[None, :] >= count[:, None]] = -1

    side = min(height, width)
    a = np.maximum(rng.uniform(scale[0], scale[1], size=(n, hi)) * side, _MIN_SIZE_PIXELS)
    reach = a * _CIRCUMRADIUS[np.maximum(kind, 0)]          # how far the shape extends from its centre
    # Centres uniform over the positions that keep the whole shape inside [0, H-1] x [0, W-1].
    cy = reach + rng.uniform(size=(n, hi)) * np.maximum(height - 1 - 2 * reach, 0)
    cx = reach + rng.uniform(size=(n, hi)) * np.maximum(width - 1 - 2 * reach, 0)
    angle = rng.uniform(0, 2 * np.pi, size=(n, hi))
    color = _pick_colors(rng, image, cy, cx, min_contrast)    # (n, hi, C)

    # top[i, y, x] = index m of the shape on top at that pixel (-1: background). Later shapes overwrite earlier
    # ones, so shape m is painted over shapes 0..m-1; the colours and labels are looked up once at the end.
    top = np.full((n, height, width), -1, dtype=np.int8)
    for m in range(hi):
        for k in range(3):
            sel = np.flatnonzero(kind[:, m] == k)
            if sel.size:
                inside = _inside(k, yy, xx, *(p[sel, m, None, None] for p in (cy, cx, a, angle)))
                top[sel] = np.where(inside, np.int8(m), top[sel])
    # Look-up tables with one row per (image, slot): slot 0 is the background, slot m + 1 is shape m.
    # np.take with one flat index is the fast way to gather from them.
    row = np.arange(n)[:, None, None] * (hi + 1) + (top.astype(np.intp) + 1)              # (n, H, W)
    labels = np.concatenate([np.zeros((n, 1)), kind + 1], axis=1).astype(np.uint8)      # (n, hi + 1)
    mask = np.take(labels.ravel(), row)
    colors = np.concatenate([np.zeros((n, 1, channels), np.float32), color], axis=1)      # (n, hi + 1, C)
    image = np.where((top >= 0)[..., None], np.take(colors.reshape(-1, channels), row, axis=0), image)

    if noise > 0:
        image += noise * rng.standard_normal(image.shape, dtype=np.float32)
    np.clip(image, 0.0, 1.0, out=image)
    return image, mask, kind


def _inside(kind, yy, xx, cy, cx, a, angle):
    """Boolean (n, H, W): which pixel centres lie in the shape; cy, cx, a, angle have shape (n, 1, 1)."""
    cy, cx, a, angle = (v.astype(np.float32) for v in (cy, cx, a, angle))   # float32 throughout, for speed
    dy, dx = yy - cy, xx - cx                                           # (n, H, 1) and (n, 1, W)
    p = a * np.float32(_SIZE_PARAM[kind])
    if kind == 0:                                                       # circle, radius p
        return dx * dx + dy * dy <= p * p
    if kind == 1:                                                       # square, half-side p
        c, s = np.cos(angle), np.sin(angle)
        u = c * dx + s * dy                                             # coordinates in the square's frame
        v = -s * dx + c * dy
        return (np.abs(u) <= p) & (np.abs(v) <= p)
    inside = True                                                       # triangle, circumradius p
    for k in range(3):                          # inside all three edges: distance along each normal <= inradius
        t = angle + np.float32(np.pi + 2 * np.pi * k / 3)
        inside = inside & (np.cos(t) * dx + np.sin(t) * dy <= p / 2)
    return inside


def _background(rng, n, height, width, channels, texture):
    """(n, H, W, C) float32: a smooth field, bilinearly interpolated from a coarse 4 x 4 grid of colours.

    grid = base colour + texture * (linear ramp in a random direction * random colour change + random jitter).
    Bilinear interpolation reproduces a linear function exactly, so the ramp stays a clean gradient across the
    whole image, and the jitter becomes smooth blobs.
    """
    g = _GRID
    base = rng.uniform(0.15, 0.85, size=(n, 1, 1, channels))
    phi = rng.uniform(0, 2 * np.pi, size=(n, 1, 1, 1))
    node = np.linspace(-0.5, 0.5, g)              # grid-node positions; the image spans -0.5 to 0.5
    ramp = np.cos(phi) * node[None, None, :, None] + np.sin(phi) * node[None, :, None, None]   # (n, g, g, 1)
    ramp_color = rng.uniform(-1, 1, size=(n, 1, 1, channels))
    jitter = rng.uniform(-0.5, 0.5, size=(n, g, g, channels))
    grid = (base + texture * (ramp * ramp_color + jitter)).astype(np.float32)
    # Interpolate along the rows, then along the columns: two small matrix products.
    rows = np.matmul(_bilinear_matrix(height, g), grid.reshape(n, g, g * channels))            # (n, H, g*C)
    image = np.matmul(_bilinear_matrix(width, g), rows.reshape(n * height, g, channels))       # (n*H, W, C)
    return np.clip(image.reshape(n, height, width, channels), 0.0, 1.0)


def _bilinear_matrix(out_size, in_size):
    """(out_size, in_size) weights: row i linearly interpolates the in_size grid at position i, corners aligned."""
    pos = np.linspace(0, in_size - 1, out_size)
    left = np.minimum(np.floor(pos).astype(int), in_size - 2)
    frac = pos - left
    weights = np.zeros((out_size, in_size), dtype=np.float32)
    weights[np.arange(out_size), left] = 1 - frac
    weights[np.arange(out_size), left + 1] = frac
    return weights


def _pick_colors(rng, background, cy, cx, min_contrast):
    """(n, S, C) shape colours, each differing from the background under its centre by >= min_contrast.

    Several candidate colours are drawn per shape; the first one with enough contrast is kept (if none has,
    the one with the most contrast). Drawing candidates for all shapes at once keeps this vectorised.
    """
    n, shapes = cy.shape
    channels = background.shape[-1]
    under = background[np.arange(n)[:, None], np.rint(cy).astype(int), np.rint(cx).astype(int)]   # (n, S, C)
    candidates = rng.uniform(0, 1, size=(n, shapes, _COLOR_CANDIDATES, channels))
    contrast = np.sqrt(np.mean((candidates - under[:, :, None, :]) ** 2, axis=-1))            # (n, S, K)
    good = contrast >= min_contrast
    choice = np.where(good.any(axis=-1), good.argmax(axis=-1), contrast.argmax(axis=-1))     # (n, S)
    return np.take_along_axis(candidates, choice[..., None, None], axis=2)[:, :, 0, :].astype(np.float32)
