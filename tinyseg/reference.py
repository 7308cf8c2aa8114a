"""The definitions, as plain loops: what every fast layer must compute, one number at a time.

Read these first. Each function follows its formula literally (one output value, or one contribution to a
gradient, per loop iteration), with no im2col, no bands, no Numba, so that a learner can check the fast code
in tinyseg/layers and tinyseg/kernels against something obviously right. They are slow (pure Python loops):
use small arrays. The tests prove the layers equal these functions.

Shapes are channels-last, as everywhere in tinyseg:

    x (N, H, W, C)   conv kernel (KH, KW, C, F)   transposed-conv kernel (KH, KW, F, C)   y (N, OH, OW, F)

Notation (the same in the layers' docstrings, the kernels' and the tutorials): each index is named after the
size it runs over, and no letter means two things.

    n < N     the image in the batch          h < H, w < W   an input row, column      c < C   input channel
    f < F     the filter (output channel)     i < OH, j < OW an output row, column
    u < KH, v < KW   the kernel tap: row and column offset inside the window
    sh, sw    strides     dh, dw   dilations     top, left   the padding before the first row, column
    K the kernel, b the bias (and nothing else), G = dL/dy the gradient arriving from above

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
    """y[n,i,j,f] = b[f] + sum_{u,v,c} x[n, i*sh - top + u*dh, j*sw - left + v*dw, c] * K[u,v,c,f]
    (x read as 0 outside the image)."""
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilation)
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    (OH, top), (OW, left) = _pads(H, KH, sh, padding, dh), _pads(W, KW, sw, padding, dw)
    y = np.zeros((N, OH, OW, F))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for f in range(F):
                    total = 0.0 if bias is None else float(bias[f])
                    for u in range(KH):
                        for v in range(KW):
                            h, w = i * sh - top + u * dh, j * sw - left + v * dw
                            if 0 <= h < H and 0 <= w < W:
                                for c in range(C):
                                    total += x[n, h, w, c] * kernel[u, v, c, f]
                    y[n, i, j, f] = total
    return y


def conv2d_backward(x, kernel, grad, strides=1, padding="valid", dilation=1):
    """(dL/dx, dL/dK, dL/db) from grad = dL/dy: each product x[n, h, w, c] * K[u, v, c, f] that made
    y[n, i, j, f] sends grad[n, i, j, f] * K[u, v, c, f] to x and grad * x to K; db sums grad."""
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilation)
    N, H, W, C = x.shape
    KH, KW, _, F = kernel.shape
    (OH, top), (OW, left) = _pads(H, KH, sh, padding, dh), _pads(W, KW, sw, padding, dw)
    dx, dk = np.zeros(x.shape), np.zeros(kernel.shape)
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for f in range(F):
                    g = grad[n, i, j, f]
                    for u in range(KH):
                        for v in range(KW):
                            h, w = i * sh - top + u * dh, j * sw - left + v * dw
                            if 0 <= h < H and 0 <= w < W:
                                for c in range(C):
                                    dx[n, h, w, c] += g * kernel[u, v, c, f]
                                    dk[u, v, c, f] += g * x[n, h, w, c]
    return dx, dk, grad.sum(axis=(0, 1, 2))


def _painted(x_shape, kernel_shape, out_hw, strides, padding):
    """Every (n, h, w, u, v, i, j) of a transposed convolution: input pixel (n, h, w) paints kernel tap (u, v)
    onto output pixel (i, j) = (h*sh - top + u, w*sw - left + v), for the taps that land inside the output."""
    sh, sw = _pair(strides)
    N, H, W, _ = x_shape
    KH, KW = kernel_shape[:2]
    OH, OW = out_hw
    top, left = _pads(OH, KH, sh, padding)[1], _pads(OW, KW, sw, padding)[1]
    for n in range(N):
        for h in range(H):
            for w in range(W):
                for u in range(KH):
                    for v in range(KW):
                        i, j = h * sh - top + u, w * sw - left + v
                        if 0 <= i < OH and 0 <= j < OW:
                            yield n, h, w, u, v, i, j


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid"):
    """Keras's Conv2DTranspose: every input pixel paints its kernel-weighted values onto the output window
    that a convolution with the same kernel would have read it from,

        y[n, h*sh - top + u, w*sw - left + v, f] += x[n, h, w, c] * K[u, v, f, c]

    with OH = H*sh + max(KH - sh, 0) ('valid') or H*sh ('same'), and top/left the pads of the convolution
    (OH, OW) -> (H, W)."""
    sh, sw = _pair(strides)
    N, H, W, C = x.shape
    KH, KW, F, _ = kernel.shape
    OH = H * sh + max(KH - sh, 0) if padding == "valid" else H * sh
    OW = W * sw + max(KW - sw, 0) if padding == "valid" else W * sw
    y = np.zeros((N, OH, OW, F)) + (0.0 if bias is None else bias)
    for n, h, w, u, v, i, j in _painted(x.shape, kernel.shape, (OH, OW), strides, padding):
        for f in range(F):
            for c in range(C):
                y[n, i, j, f] += x[n, h, w, c] * kernel[u, v, f, c]
    return y


def conv2d_transpose_backward(x, kernel, grad, strides=1, padding="valid"):
    """(dL/dx, dL/dK, dL/db) of conv2d_transpose: each painted product sends grad back along its path."""
    F, C = kernel.shape[2:]
    dx, dk = np.zeros(x.shape), np.zeros(kernel.shape)
    for n, h, w, u, v, i, j in _painted(x.shape, kernel.shape, grad.shape[1:3], strides, padding):
        for f in range(F):
            for c in range(C):
                dx[n, h, w, c] += grad[n, i, j, f] * kernel[u, v, f, c]
                dk[u, v, f, c] += grad[n, i, j, f] * x[n, h, w, c]
    return dx, dk, grad.sum(axis=(0, 1, 2))


# --- pooling -------------------------------------------------------------------------------------------------
def _windows(H, W, pool_size, strides, padding):
    """For each output (i, j): the list of real (non-padded) input pixels (h, w) of its window, row-major over
    the taps (u, v)."""
    (KH, KW), (sh, sw) = _pair(pool_size), _pair(strides)
    (OH, top), (OW, left) = _pads(H, KH, sh, padding), _pads(W, KW, sw, padding)
    return {(i, j): [(i * sh - top + u, j * sw - left + v) for u in range(KH) for v in range(KW)
                     if 0 <= i * sh - top + u < H and 0 <= j * sw - left + v < W]
            for i in range(OH) for j in range(OW)}, (OH, OW)


def pool2d(kind, x, grad, pool_size=2, strides=None, padding="valid"):
    """(y, dL/dx) of max or average pooling ('max' / 'avg'): y = max (or mean) of each window's real pixels;
    the max's gradient goes to the window's first maximum in row-major order, the mean's is shared equally;
    overlapping windows add up."""
    N, H, W, C = x.shape
    windows, (OH, OW) = _windows(H, W, pool_size, strides or pool_size, padding)
    y, dx = np.zeros((N, OH, OW, C)), np.zeros(x.shape)
    for n in range(N):
        for (i, j), cells in windows.items():
            for c in range(C):
                values = [x[n, h, w, c] for h, w in cells]
                g = 0.0 if grad is None else grad[n, i, j, c]
                if kind == "max":
                    k = values.index(max(values))
                    y[n, i, j, c] = values[k]
                    dx[n, cells[k][0], cells[k][1], c] += g
                else:
                    y[n, i, j, c] = sum(values) / len(values)
                    for h, w in cells:
                        dx[n, h, w, c] += g / len(values)
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
    """(y, dL/dx) of UpSampling2D: nearest copies x[n, i // fh, j // fw, c]; bilinear mixes the two nearest input
    rows and columns with weights (1 - t, t); backward sends each output's gradient back with its weight."""
    fh, fw = _pair(size)
    N, H, W, C = x.shape
    if interpolation == "nearest":
        rows = [[(i // fh, 1.0)] for i in range(H * fh)]
        cols = [[(j // fw, 1.0)] for j in range(W * fw)]
    else:
        rows, cols = _bilinear_taps(H * fh, H, fh), _bilinear_taps(W * fw, W, fw)
    y, dx = np.zeros((N, H * fh, W * fw, C)), np.zeros(x.shape)
    for n in range(N):
        for i, row_taps in enumerate(rows):
            for j, col_taps in enumerate(cols):
                for c in range(C):
                    for h, weight_h in row_taps:
                        for w, weight_w in col_taps:
                            y[n, i, j, c] += weight_h * weight_w * x[n, h, w, c]
                            if grad is not None:
                                dx[n, h, w, c] += weight_h * weight_w * grad[n, i, j, c]
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
