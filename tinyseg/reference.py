"""The definitions, as plain loops: what every fast layer must compute, one number at a time.

Read these first. Each function follows its formula literally (one output value, or one contribution to a
gradient, per loop iteration), with no im2col, no bands, no Numba, so that a learner can check the fast code
in tinyseg/layers and tinyseg/kernels against something obviously right. They are slow (pure Python loops):
use small arrays. The tests prove the layers equal these functions.

Shapes are channels-last, as everywhere in tinyseg:

    x (N, H, W, C)   conv kernel (KH, KW, C, F)   transposed-conv kernel (KH, KW, F, C)   y (N, OH, OW, F)

Padding follows Keras: 'valid' pads nothing; 'same' pads so that OH = ceil(H / stride), the odd extra row
(column) going to the bottom (right); a dilation d spreads the kernel taps d pixels apart (effective size
(K - 1) * d + 1). Padded positions hold 0 for convolutions and are skipped by pooling.
"""
import math

import numpy as np


def _pads(size, kernel, stride, padding, dilation=1):
    """(out, pad_before) for one axis, by Keras's rule."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        return (size - k) // stride + 1, 0
    out = math.ceil(size / stride)
    return out, max((out - 1) * stride + k - size, 0) // 2


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# --- convolution ---------------------------------------------------------------------------------------------
def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation=1):
    """y[n,i,j,f] = b[f] + sum_{a,b,c} x[n, i*sh - top + a*dh, j*sw - left + b*dw, c] * K[a,b,c,f]
    (x read as 0 outside the image)."""
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilation)
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    (oh, top), (ow, left) = _pads(h, kh, sh, padding, dh), _pads(w, kw, sw, padding, dw)
    y = np.zeros((n, oh, ow, f))
    for b_ in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(f):
                    total = 0.0 if bias is None else float(bias[o])
                    for a in range(kh):
                        for b in range(kw):
                            r, q = i * sh - top + a * dh, j * sw - left + b * dw
                            if 0 <= r < h and 0 <= q < w:
                                for ch in range(c):
                                    total += x[b_, r, q, ch] * kernel[a, b, ch, o]
                    y[b_, i, j, o] = total
    return y


def conv2d_backward(x, kernel, grad, strides=1, padding="valid", dilation=1):
    """(dL/dx, dL/dK, dL/db) from grad = dL/dy: each product x[., r, q, c] * K[a, b, c, f] that made
    y[., i, j, f] sends grad[., i, j, f] * K[a, b, c, f] to x and grad * x to K; db sums grad."""
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilation)
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    (oh, top), (ow, left) = _pads(h, kh, sh, padding, dh), _pads(w, kw, sw, padding, dw)
    dx, dk = np.zeros(x.shape), np.zeros(kernel.shape)
    for b_ in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(f):
                    g = grad[b_, i, j, o]
                    for a in range(kh):
                        for b in range(kw):
                            r, q = i * sh - top + a * dh, j * sw - left + b * dw
                            if 0 <= r < h and 0 <= q < w:
                                for ch in range(c):
                                    dx[b_, r, q, ch] += g * kernel[a, b, ch, o]
                                    dk[a, b, ch, o] += g * x[b_, r, q, ch]
    return dx, dk, grad.sum(axis=(0, 1, 2))


def _painted(x_shape, kernel_shape, out_hw, strides, padding):
    """Every (n, i, j, a, b, r, q) of a transposed convolution: input pixel (n, i, j) paints kernel tap (a, b)
    onto output pixel (r, q) = (i*sh - top + a, j*sw - left + b), for the taps that land inside the output."""
    sh, sw = _pair(strides)
    n, h, w, _ = x_shape
    kh, kw = kernel_shape[:2]
    oh, ow = out_hw
    top, left = _pads(oh, kh, sh, padding)[1], _pads(ow, kw, sw, padding)[1]
    for b_ in range(n):
        for i in range(h):
            for j in range(w):
                for a in range(kh):
                    for b in range(kw):
                        r, q = i * sh - top + a, j * sw - left + b
                        if 0 <= r < oh and 0 <= q < ow:
                            yield b_, i, j, a, b, r, q


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid"):
    """Keras's Conv2DTranspose: every input pixel paints its kernel-weighted values onto the output window
    that a convolution with the same kernel would have read it from,

        y[n, i*sh - top + a, j*sw - left + b, f] += x[n, i, j, c] * K[a, b, f, c]

    with OH = H*sh + max(KH - sh, 0) ('valid') or H*sh ('same'), and top/left the pads of the convolution
    (OH, OW) -> (H, W)."""
    sh, sw = _pair(strides)
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    oh = h * sh + max(kh - sh, 0) if padding == "valid" else h * sh
    ow = w * sw + max(kw - sw, 0) if padding == "valid" else w * sw
    y = np.zeros((n, oh, ow, f)) + (0.0 if bias is None else bias)
    for b_, i, j, a, b, r, q in _painted(x.shape, kernel.shape, (oh, ow), strides, padding):
        for o in range(f):
            for ch in range(c):
                y[b_, r, q, o] += x[b_, i, j, ch] * kernel[a, b, o, ch]
    return y


def conv2d_transpose_backward(x, kernel, grad, strides=1, padding="valid"):
    """(dL/dx, dL/dK, dL/db) of conv2d_transpose: each painted product sends grad back along its path."""
    f, c = kernel.shape[2:]
    dx, dk = np.zeros(x.shape), np.zeros(kernel.shape)
    for b_, i, j, a, b, r, q in _painted(x.shape, kernel.shape, grad.shape[1:3], strides, padding):
        for o in range(f):
            for ch in range(c):
                dx[b_, i, j, ch] += grad[b_, r, q, o] * kernel[a, b, o, ch]
                dk[a, b, o, ch] += grad[b_, r, q, o] * x[b_, i, j, ch]
    return dx, dk, grad.sum(axis=(0, 1, 2))


# --- pooling -------------------------------------------------------------------------------------------------
def _windows(h, w, pool_size, strides, padding):
    """For each output (i, j): the list of real (non-padded) input pixels of its window, row-major."""
    (kh, kw), (sh, sw) = _pair(pool_size), _pair(strides)
    (oh, top), (ow, left) = _pads(h, kh, sh, padding), _pads(w, kw, sw, padding)
    return {(i, j): [(i * sh - top + a, j * sw - left + b) for a in range(kh) for b in range(kw)
                     if 0 <= i * sh - top + a < h and 0 <= j * sw - left + b < w]
            for i in range(oh) for j in range(ow)}, (oh, ow)


def pool2d(kind, x, grad, pool_size=2, strides=None, padding="valid"):
    """(y, dL/dx) of max or average pooling ('max' / 'avg'): y = max (or mean) of each window's real pixels;
    the max's gradient goes to the window's first maximum in row-major order, the mean's is shared equally;
    overlapping windows add up."""
    n, h, w, c = x.shape
    windows, (oh, ow) = _windows(h, w, pool_size, strides or pool_size, padding)
    y, dx = np.zeros((n, oh, ow, c)), np.zeros(x.shape)
    for b_ in range(n):
        for (i, j), cells in windows.items():
            for ch in range(c):
                values = [x[b_, r, q, ch] for r, q in cells]
                g = 0.0 if grad is None else grad[b_, i, j, ch]
                if kind == "max":
                    k = values.index(max(values))
                    y[b_, i, j, ch] = values[k]
                    dx[b_, cells[k][0], cells[k][1], ch] += g
                else:
                    y[b_, i, j, ch] = sum(values) / len(values)
                    for r, q in cells:
                        dx[b_, r, q, ch] += g / len(values)
    return y, dx


# --- upsampling ----------------------------------------------------------------------------------------------
def _bilinear_taps(out_size, in_size, factor):
    """For each output index: [(input index, weight)], half-pixel centres (Keras, align_corners=False)."""
    taps = []
    for i in range(out_size):
        src = max((i + 0.5) / factor - 0.5, 0.0)
        i0 = int(math.floor(src))
        i1, t = min(i0 + 1, in_size - 1), src - i0
        taps.append([(i0, 1 - t), (i1, t)])
    return taps


def upsample(x, grad, size=2, interpolation="nearest"):
    """(y, dL/dx) of UpSampling2D: nearest copies x[i // fh, j // fw]; bilinear mixes the two nearest input
    rows and columns with weights (1 - t, t); backward sends each output's gradient back with its weight."""
    fh, fw = _pair(size)
    n, h, w, c = x.shape
    if interpolation == "nearest":
        rows = [[(i // fh, 1.0)] for i in range(h * fh)]
        cols = [[(j // fw, 1.0)] for j in range(w * fw)]
    else:
        rows, cols = _bilinear_taps(h * fh, h, fh), _bilinear_taps(w * fw, w, fw)
    y, dx = np.zeros((n, h * fh, w * fw, c)), np.zeros(x.shape)
    for b_ in range(n):
        for i, row_taps in enumerate(rows):
            for j, col_taps in enumerate(cols):
                for ch in range(c):
                    for r, u in row_taps:
                        for q, v in col_taps:
                            y[b_, i, j, ch] += u * v * x[b_, r, q, ch]
                            if grad is not None:
                                dx[b_, r, q, ch] += u * v * grad[b_, i, j, ch]
    return y, dx


# --- batch normalisation (training mode) ---------------------------------------------------------------------
def batch_norm(x, gamma, beta, grad=None, epsilon=1e-3):
    """(y, dL/dx, dL/dgamma, dL/dbeta) in training mode, channel by channel, from the sums themselves:

        mu = (1/M) sum x,  var = (1/M) sum (x - mu)^2,  xhat = (x - mu) / sqrt(var + eps),  y = gamma xhat + beta
        dL/dx_i = (gamma / sigma) (g_i - (1/M) sum_j g_j - xhat_i (1/M) sum_j g_j xhat_j)

    over the M = N*H*W values of the channel (the derivation is in tinyseg/layers/normalization.py)."""
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    g_flat = None if grad is None else grad.reshape(-1, c)
    m = flat.shape[0]
    y, dx = np.zeros(flat.shape), np.zeros(flat.shape)
    dgamma, dbeta = np.zeros(c), np.zeros(c)
    for ch in range(c):
        values = [float(v) for v in flat[:, ch]]
        mu = sum(values) / m
        var = sum((v - mu) ** 2 for v in values) / m
        sigma = math.sqrt(var + epsilon)
        xhat = [(v - mu) / sigma for v in values]
        for k in range(m):
            y[k, ch] = gamma[ch] * xhat[k] + beta[ch]
        if g_flat is None:
            continue
        g = [float(v) for v in g_flat[:, ch]]
        mean_g = sum(g) / m
        mean_gx = sum(gk * xk for gk, xk in zip(g, xhat)) / m
        dgamma[ch], dbeta[ch] = mean_gx * m, mean_g * m
        for k in range(m):
            dx[k, ch] = gamma[ch] / sigma * (g[k] - mean_g - xhat[k] * mean_gx)
    return y.reshape(x.shape), dx.reshape(x.shape), dgamma, dbeta


# --- softmax cross-entropy -----------------------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, ignore_index=None, class_weight=None):
    """(L, dL/dz) for integer labels (..., ) and logits (..., K), per position m with weight w = w_{y_m}
    (1 without class weights, 0 where the label is ignore_index):

        log p_mk = z_mk - log sum_j exp(z_mj)            (computed with the maximum subtracted)
        L = sum_m w_m (-log p_{m, y_m}) / sum_m w_m
        dL/dz_mk = w_m (p_mk - [k == y_m]) / sum_m w_m
    """
    k = logits.shape[-1]
    z = logits.reshape(-1, k)
    y = np.asarray(labels).reshape(-1)
    total_w, total = 0.0, 0.0
    grad = np.zeros(z.shape)
    weights = []
    for m in range(len(y)):
        ignored = ignore_index is not None and y[m] == ignore_index
        weights.append(0.0 if ignored else (1.0 if class_weight is None else float(class_weight[y[m]])))
    total_w = sum(weights)
    for m in range(len(y)):
        if weights[m] == 0:
            continue
        top = max(z[m])
        log_norm = top + math.log(sum(math.exp(v - top) for v in z[m]))
        total += weights[m] * (log_norm - z[m, y[m]])
        for j in range(k):
            grad[m, j] = weights[m] * (math.exp(z[m, j] - log_norm) - (1.0 if j == y[m] else 0.0)) / total_w
    return (total / total_w if total_w else 0.0), grad.reshape(logits.shape)


# --- Winograd F(m x m, 3 x 3), one tile ----------------------------------------------------------------------
def winograd_tile(d, g, AT, G, BT):
    """Y = AT [(G g G^T) * (BT d B)] A for one input tile d (n, n) and a 3x3 kernel g, one number at a time:
    the m x m outputs of a 3x3 correlation of d with g (tinyseg/winograd.py says why; AT (m, n), G (n, 3),
    BT (n, n) from winograd.transform_matrices(m)). With n*n multiplications of U by V instead of 9*m*m."""
    m, n = len(AT), len(BT)
    U = [[sum(G[i][a] * g[a][b] * G[j][b] for a in range(3) for b in range(3)) for j in range(n)]
         for i in range(n)]                                               # U = G g G^T
    V = [[sum(BT[i][a] * d[a][b] * BT[j][b] for a in range(n) for b in range(n)) for j in range(n)]
         for i in range(n)]                                               # V = BT d B
    M = [[U[i][j] * V[i][j] for j in range(n)] for i in range(n)]        # the n*n multiplications
    return np.array([[sum(AT[a][i] * M[i][j] * AT[b][j] for i in range(n) for j in range(n)) for b in range(m)]
                     for a in range(m)])                                  # Y = AT M A
