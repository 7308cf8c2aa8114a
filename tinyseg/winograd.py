"""Winograd's minimal filtering: a 3x3 convolution with fewer multiplications, in plain NumPy.

One dimension first. F(m, r) computes m outputs of a 1-D correlation with an r-tap filter g,

    y[i] = sum_{k=0}^{r-1} d[i + k] * g[k],      i = 0 .. m-1,    from n = m + r - 1 inputs d,

with n multiplications instead of m * r:

    y = AT @ ((G @ g) * (BT @ d))        AT (m, n)   G (n, r)   BT (n, n)   * elementwise

F(4, 3): 6 multiplications for 4 outputs instead of 12. Nesting the 1-D formula along rows and columns gives
the 2-D tile formula F(m x m, 3 x 3), for one input tile d (n, n) and a 3x3 kernel g (3, 3):

    Y = AT @ [(G @ g @ G^T) * (BT @ d @ B)] @ A        Y (m, m): the outputs of the tile

n^2 = 36 multiplications for 16 outputs instead of 144. For a layer with C input and K output channels the
elementwise product becomes, at each of the n^2 positions (xi, nu), a matrix product over the channels:

    U[xi, nu] = (G g_ck G^T)[xi, nu]     (n, n, C, K)   the kernel, transformed once per weight update
    V[xi, nu] = (BT d_pc B)[xi, nu]      (n, n, P, C)   every input tile p (P tiles of the image batch)
    M[xi, nu] = V[xi, nu] @ U[xi, nu]    (n, n, P, K)   n^2 ordinary matrix products
    Y_pk      = AT M_pk A                (P, m, m, K)   the output tiles, side by side

Where the matrices come from (Toom-Cook, i.e. Lagrange interpolation). Read g and an m-long vector h as
the coefficients of polynomials g(x) (degree r-1) and h(x) (degree m-1). Their product s(x) = g(x) h(x) has
degree n - 1, so it is fixed by its values at n points: n - 1 finite points a_j (0, 1, -1, 2, -2, ...) and
"infinity", where the value taken is the leading coefficient s_{n-1} = g_{r-1} h_{m-1}. So

    s(a_j) = g(a_j) * h(a_j)                      one multiplication per point
    s(x)   = sum_j s(a_j) L_j(x) + s_{n-1} Z(x)    Lagrange: L_j(x) = prod_{l != j} (x - a_l) / (a_j - a_l),
                                                  Z(x) = prod_l (x - a_l) corrects the leading coefficient

Evaluating g at the points is the matrix G (rows [1, a_j, a_j^2, ...] and [0, ..., 0, 1] for infinity),
evaluating h is the matrix A (n, m) of the same kind, and interpolating is a matrix C (n, n) whose column
j holds the coefficients of L_j (and the last one those of Z). So the linear convolution is
s = C [(G g) * (A h)]. The correlation y is its transpose: <d, s> = sum_t d_t sum_k g_k h_{t-k}
= sum_i h_i y_i, so y = A^T [(G g) * (C^T d)]: AT = A^T and BT = C^T. The denominators
1/prod_{l != j}(a_j - a_l) are moved from C into G's rows (the product does not care which factor carries
them), so for integer points BT holds integers: row j of BT is the coefficients of prod_{l != j}(x - a_l).

Why not ever larger tiles: the points grow (2, 3, 1/2, ...), the entries of AT, G and BT spread over more
orders of magnitude and rounding errors grow with them. In float32, F(2, 3) is about as exact as im2col
and F(4, 3) loses about one more decimal digit (tests/layers/test_conv2d_winograd.py states the figures).

Shapes are channels-last: x (N, H, W, C), kernel (3, 3, C, K), y (N, OH, OW, K). This module is the
plain NumPy version: kernels/winograd.py computes the same numbers with Numba transforms, and the tests
prove the two equal; tinyseg/reference.py has one tile as plain loops.
"""
import numpy as np

DEFAULT_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0)   # the finite points, in the order used


def _poly_from_roots(roots):
    """Coefficients (lowest power first) of prod_l (x - roots[l])."""
    coef = np.array([1.0])
    for root in roots:
        coef = np.concatenate([[0.0], coef]) - root * np.concatenate([coef, [0.0]])   # (x - root) * coef
    return coef


def transform_matrices(m, r=3, points=None):
    """(AT, G, BT) of F(m, r) in float64: AT (m, n), G (n, r), BT (n, n), n = m + r - 1.

    points: the n - 1 finite interpolation points (default 0, 1, -1, 2, -2, 1/2, ...); the last point is
    infinity. With them, for any 1-D data d (n,) and filter g (r,):

        AT @ ((G @ g) * (BT @ d)) == [sum_k d[i + k] g[k] for i in range(m)]   (up to rounding)

    Built, not typed in (see the module docstring): the rows of G and the columns of AT evaluate a
    polynomial at the points, the rows of BT are the numerators of the Lagrange basis, and the Lagrange
    denominators scale the rows of G.
    """
    m, r = int(m), int(r)
    if m < 1 or r < 1:
        raise ValueError(f"transform_matrices: m and r must be positive integers, got m={m}, r={r}")
    n = m + r - 1
    if points is None:
        if n - 1 > len(DEFAULT_POINTS):
            raise ValueError(f"transform_matrices: m + r - 2 must be at most {len(DEFAULT_POINTS)} with the "
                             f"default points, got {n - 1}; pass points")
        points = DEFAULT_POINTS[:n - 1]
    a = np.asarray(points, dtype=np.float64)
    if a.shape != (n - 1,) or len(set(a.tolist())) != n - 1:
        raise ValueError(f"transform_matrices: points must be {n - 1} distinct numbers, got {points}")
    AT = np.zeros((m, n))
    G = np.zeros((n, r))
    BT = np.zeros((n, n))
    for j, aj in enumerate(a):
        others = np.delete(a, j)
        AT[:, j] = aj ** np.arange(m)                             # h(a_j) = sum_i h_i a_j^i
        G[j] = aj ** np.arange(r) / np.prod(aj - others)          # g(a_j), times the Lagrange denominator
        BT[j, :n - 1] = _poly_from_roots(others)                  # numerator of L_j: prod_{l != j} (x - a_l)
    AT[m - 1, n - 1] = 1.0                                        # at infinity: the leading coefficients
    G[n - 1, r - 1] = 1.0
    BT[n - 1] = _poly_from_roots(a)                               # Z(x) = prod_l (x - a_l)
    return AT, G, BT


# ----------------------------------------------------------------------------------------------------------
# The whole convolution: tiles, the three transforms, n^2 products.
# ----------------------------------------------------------------------------------------------------------
def kernel_transform(kernel, G):
    """U = G g G^T for every channel pair: kernel (3, 3, C, K) -> (n, n, C, K), computed in float64."""
    return np.einsum("ia,abck,jb->ijck", G, kernel.astype(np.float64), G, optimize=True)


def tile_grid(out_hw, m):
    """(TH, TW): how many m x m output tiles cover an output of out_hw (the last ones may overhang)."""
    return -(-out_hw[0] // m), -(-out_hw[1] // m)


def input_tiles(x, pads, out_hw, m, n):
    """The n x n input tiles of x, m apart: (N, TH, TW, n, n, C), zero outside x (pads: top, bottom, left, right
    as in geometry.py; the tiles that overhang the output read zeros too)."""
    th, tw = tile_grid(out_hw, m)
    hp, wp = (th - 1) * m + n, (tw - 1) * m + n                   # the padded input the tiles cover
    pt, pl = pads[0], pads[2]
    xp = np.zeros((x.shape[0], hp, wp, x.shape[3]), dtype=x.dtype)
    h, w = min(x.shape[1], hp - pt), min(x.shape[2], wp - pl)
    xp[:, pt:pt + h, pl:pl + w] = x[:, :h, :w]
    windows = np.lib.stride_tricks.sliding_window_view(xp, (n, n), axis=(1, 2))   # (N, hp-n+1, wp-n+1, C, n, n)
    return windows[:, ::m, ::m].transpose(0, 1, 2, 4, 5, 3)


def winograd_products(x, U, pads, out_hw, m):
    """y (N, OH, OW, K) = the convolution of x whose transformed kernel is U (n, n, C, K), F(m x m, 3 x 3)."""
    AT, _, BT = (a.astype(x.dtype) for a in transform_matrices(m))   # x's precision, as the fast kernels
    n = m + 2
    d = input_tiles(x, pads, out_hw, m, n)                         # (N, TH, TW, n, n, C)
    N, th, tw = d.shape[:3]
    V = np.einsum("ia,ptqabc,jb->ijptqc", BT, d, BT, optimize=True)   # BT d B: (n, n, N, TH, TW, C)
    V = V.reshape(n, n, N * th * tw, -1)
    M = V @ U.astype(x.dtype)                                      # n^2 products (P, C) @ (C, K)
    Y = np.einsum("ai,ijpk,bj->pabk", AT, M, AT, optimize=True)    # AT M A: (P, m, m, K)
    k = U.shape[3]
    y = Y.reshape(N, th, tw, m, m, k).transpose(0, 1, 3, 2, 4, 5).reshape(N, th * m, tw * m, k)
    return np.ascontiguousarray(y[:, :out_hw[0], :out_hw[1]]).astype(x.dtype, copy=False)


def same_or_valid(padding, hw):
    """(pads, out_hw) of a 3x3 stride-1 convolution: 'same' pads one pixel all round, 'valid' none."""
    if padding == "same":
        return (1, 1, 1, 1), tuple(hw)
    if padding == "valid":
        return (0, 0, 0, 0), (hw[0] - 2, hw[1] - 2)
    raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")


def conv2d_winograd(x, kernel, padding, m=4, bias=None):
    """y = conv2d(x, kernel) (+ bias) for a 3x3 kernel, stride 1, by F(m x m, 3 x 3).

    x (N, H, W, C), kernel (3, 3, C, K), padding 'same' or 'valid', bias (K,) or None -> y (N, OH, OW, K),
    the same numbers as any other 3x3 convolution up to rounding.
    """
    if kernel.shape[:2] != (3, 3) or kernel.ndim != 4 or x.ndim != 4 or kernel.shape[2] != x.shape[3]:
        raise ValueError(f"conv2d_winograd: expected x (N, H, W, C) and kernel (3, 3, C, K), got x {x.shape} "
                         f"and kernel {kernel.shape}")
    pads, out_hw = same_or_valid(padding, x.shape[1:3])
    y = winograd_products(x, kernel_transform(kernel, transform_matrices(m)[1]), pads, out_hw, m)
    if bias is not None:
        y += bias
    return y


def back_kernel(kernel):
    """The kernel of the input gradient: flipped in space, its channel axes swapped, (3, 3, K, C)."""
    return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def back_pads(pads):
    """The input gradient of a 3x3 stride-1 convolution with `pads` is a convolution of G with back_kernel,
    padded by 2 - pad on each side (kernels/convolution.py's conv2d_transpose derives it)."""
    return tuple(2 - p for p in pads)


def winograd_kernel_grad(x, grad, pads, m=4):
    """dL/dkernel (3, 3, C, K) of the 3x3 stride-1 convolution of x with paddings `pads`, for G = grad, by the
    tile formula run backwards. With V the forward's input tiles and dM = A dY_p AT for each output tile
    dY_p of G (zero where the tile overhangs the output):

        dU[xi, nu] = V[xi, nu]^T @ dM[xi, nu]      (C, P) @ (P, K): n^2 products over all tiles
        dL/dg      = G^T dU G                       (3, 3, C, K)
    """
    AT, G, BT = transform_matrices(m)
    AT, BT = AT.astype(x.dtype), BT.astype(x.dtype)
    n, out_hw = m + 2, grad.shape[1:3]
    d = input_tiles(x, pads, out_hw, m, n)
    V = np.einsum("ia,ptqabc,jb->ijptqc", BT, d, BT, optimize=True).reshape(n, n, -1, x.shape[3])
    dy = input_tiles(grad, (0, 0, 0, 0), out_hw, m, m)             # the output tiles, zero where they overhang
    dM = np.einsum("ai,ptqabk,bj->ijptqk", AT, dy, AT, optimize=True).reshape(n, n, -1, grad.shape[3])
    dU = V.transpose(0, 1, 3, 2) @ dM                              # (n, n, C, K)
    return np.einsum("ia,ijck,jb->abck", G, dU.astype(np.float64), G, optimize=True).astype(x.dtype)


def conv2d_winograd_backward(x, kernel, grad, padding, m=4):
    """(dL/dx (N, H, W, C), dL/dkernel (3, 3, C, K), dL/dbias (K,)) for G = grad (N, OH, OW, K), Winograd's
    way (reference.conv2d_backward's order). The input gradient is a convolution of G with
    back_kernel(kernel), so the same tile formula; the kernel gradient is winograd_kernel_grad."""
    pads, out_hw = same_or_valid(padding, x.shape[1:3])
    G = transform_matrices(m)[1]
    dx = winograd_products(grad, kernel_transform(back_kernel(kernel), G), back_pads(pads), x.shape[1:3], m)
    return dx, winograd_kernel_grad(x, grad, pads, m), grad.sum(axis=(0, 1, 2))
