"""Sampling an image at the points of an affine map: what RandomRotation, RandomZoom and RandomTranslation do.

Each output pixel (row i, column j) of image n reads the input at the point

    x' = a0 j + a1 i + a2,      y' = b0 j + b1 i + b2          (x' a column, y' a row; Keras's 8-number
                                                                transform with c0 = c1 = 0)

    nearest:   the one pixel (round(y'), round(x'))  (round half to even), weight 1
    bilinear:  the four pixels around it, rows r0 = floor(y'), r0 + 1 and columns c0 = floor(x'), c0 + 1,
               with weights (1 - t)(1 - s), (1 - t) s, t (1 - s), t s;   t = y' - r0, s = x' - c0

A tap outside the image is handled by fill_mode (as Keras, for an axis of n pixels):

    'reflect'   ... c b a | a b c d | d c b ...      index k = i mod 2n, k if k < n else 2n - 1 - k
    'wrap'      ... b c d | a b c d | a b c ...      index i mod n
    'nearest'   ... a a a | a b c d | d d d ...      index clip(i, 0, n - 1)
    'constant'  ... k k k | a b c d | k k k ...      the tap reads fill_value instead of a pixel

So every output is a weighted sum of input pixels (and of fill_value): the sampling is linear in x,

    y[n, i, j, c] = sum_taps w x[n, r, s, c] + fill_value * (sum of the weights of the taps outside)

and its backward sends each output's gradient back to the pixels it read, with the same weights:

    dx[n, r, s, c] = sum over the taps that read pixel (r, s) of w * dy[n, i, j, c]
"""
import numpy as np

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def fix_index(index, n, fill_mode):
    """Where a tap at integer `index` of an axis of n pixels reads, by fill_mode (module docstring)."""
    if fill_mode == "wrap":
        return index % n
    if fill_mode == "reflect":
        k = index % (2 * n)
        return np.where(k < n, k, 2 * n - 1 - k)
    return np.clip(index, 0, n - 1)        # 'nearest'; 'constant' too (the tap is then marked outside)


def _axis_taps(coordinate, interpolation):
    """[(integer index, weight)] along one axis: one tap (nearest) or two (bilinear)."""
    if interpolation == "nearest":
        return [(np.rint(coordinate).astype(np.int64), 1.0)]
    low = np.floor(coordinate)
    t = coordinate - low
    return [(low.astype(np.int64), 1 - t), (low.astype(np.int64) + 1, t)]


def affine_taps(matrices, h, w, interpolation, fill_mode):
    """The taps of every output pixel of N images of h x w, for matrices (N, 6) = [a0, a1, a2, b0, b1, b2].

    Returns a list of (rows, cols, weight, inside), each (N, h, w): the pixel a tap reads (already moved inside
    by fill_mode), its weight, and whether it was inside the image (for 'constant')."""
    i, j = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    a0, a1, a2, b0, b1, b2 = (m[:, None, None] for m in np.asarray(matrices, dtype=np.float64).T)
    cols, rows = a0 * j + a1 * i + a2, b0 * j + b1 * i + b2             # (N, h, w): x' and y'
    taps = []
    for r, wr in _axis_taps(rows, interpolation):
        for c, wc in _axis_taps(cols, interpolation):
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            taps.append((fix_index(r, h, fill_mode), fix_index(c, w, fill_mode), wr * wc, inside))
    return taps


def sample(x, taps, fill_mode, fill_value):
    """y = sum over taps of weight * x[n, row, col, :] (fill_value for a tap outside in 'constant' mode)."""
    n = np.arange(len(x))[:, None, None]
    y = np.zeros(x.shape[:1] + taps[0][0].shape[1:] + x.shape[3:], dtype=x.dtype)
    for rows, cols, weight, inside in taps:
        read = x[n, rows, cols]
        if fill_mode == "constant":
            read = np.where(inside[..., None], read, x.dtype.type(fill_value))
        y += np.asarray(weight, dtype=x.dtype)[..., None] * read
    return y


def sample_backward(grad, taps, fill_mode, input_shape):
    """dx (N, H, W, C): each output's gradient times each tap's weight, added at the pixel the tap read."""
    n, h, w = (len(grad),) + tuple(input_shape[:2])
    image = np.arange(n)[:, None, None]
    dx = np.zeros((n * h * w, grad.shape[-1]), dtype=grad.dtype)
    for rows, cols, weight, inside in taps:
        weight = weight * inside if fill_mode == "constant" else weight * np.ones_like(inside)   # fill: no input
        flat = ((image * h + rows) * w + cols).ravel()                  # the pixel each output read
        for c in range(grad.shape[-1]):                                 # bincount: the sum of all that read it
            dx[:, c] += np.bincount(flat, weights=(weight * grad[..., c]).ravel(), minlength=n * h * w)
    return dx.reshape(n, h, w, grad.shape[-1])


def sample_nearest(masks, taps, fill_mode, fill_value):
    """Masks of any dtype read by their one nearest tap (no mixing of class ids)."""
    (rows, cols, _, inside), = taps
    n = np.arange(len(masks))[:, None, None]
    read = masks[n, rows, cols]
    if fill_mode == "constant":
        read = np.where(inside[..., None], read, np.asarray(fill_value).astype(masks.dtype))
    return read


# --- the three maps (Keras's conventions: centre at ((W - 1) / 2, (H - 1) / 2), angles counter-clockwise) ----
def rotation_matrices(angles, h, w):
    """[a0..b2] for rotations by `angles` (radians, one per image) about the image centre."""
    cos, sin = np.cos(angles), np.sin(angles)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos], axis=1)


def zoom_matrices(height_zoom, width_zoom, h, w):
    """[a0..b2] reading a region zoom times as tall / wide about the centre (zoom > 1: zoom out)."""
    zero = np.zeros_like(height_zoom)
    return np.stack([width_zoom, zero, (w - 1) / 2 * (1 - width_zoom),
                     zero, height_zoom, (h - 1) / 2 * (1 - height_zoom)], axis=1)


def translation_matrices(dy, dx):
    """[a0..b2] moving the image dy rows down and dx columns right (pixels, one pair per image)."""
    one, zero = np.ones_like(dy), np.zeros_like(dy)
    return np.stack([one, zero, -dx, zero, one, -dy], axis=1)
