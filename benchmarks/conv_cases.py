"""The 3x3 convolution rows at 32, 64 and 128 channels: the layers that Conv2D's 'auto' rule hands to
Winograd's F(4x4, 3x3) (tinyseg/winograd.py), forward and backward (input and kernel gradients), against
PyTorch's convolution in both memory layouts. Registered in cases.py's CASES.

The shapes are those of a U-Net's deeper levels at batch 4: each halving of the image doubles the channels.
"""
import numpy as np

from .cases import LE, Case, Goal, _layer_fwd_bwd, rand, torch_fwd_bwd, torch_pair, torch_variants

SHAPES = {"full": {32: (4, 64, 64, 32, 32), 64: (4, 32, 32, 64, 64), 128: (4, 16, 16, 128, 128)},
          "smoke": {32: (1, 8, 8, 32, 32), 64: (1, 4, 4, 64, 64), 128: (1, 4, 4, 128, 128)}}
SHAPES["quick"] = SHAPES["full"]


def conv3x3_case(channels):
    """The builder of the fwd+bwd row at `channels` input and output channels ('same' padding)."""
    def build(size, ctx):
        from tinyseg.layers import Conv2D
        n, h, w, c, f = SHAPES[ctx["mode"]][channels]
        rng = np.random.default_rng(channels)
        x, g = rand(rng, (n, h, w, c)), rand(rng, (n, h, w, f))
        fns = _layer_fwd_bwd(lambda: Conv2D(f, 3, padding="same"), x, g)

        def make_torch(variant, torch):
            conv = torch.nn.Conv2d(c, f, 3, padding=1)
            xt, gt = torch_pair(torch, x, g)[variant]
            if variant == "torch_channels_last":
                conv = conv.to(memory_format=torch.channels_last)
            return torch_fwd_bwd(torch, conv, [xt], gt, module=conv)
        fns.update(torch_variants(ctx, make_torch))
        layer = Conv2D(f, 3, padding="same")
        return fns, {"shape": f"x {x.shape} -> {g.shape}, kernel (3, 3, {c}, {f}), same padding",
                     "algorithm": "winograd" if layer.uses_winograd(x) else "im2col",
                     "flops": 3 * 2.0 * n * h * w * 9 * c * f}     # forward, kernel gradient, input gradient
    return build


CONV_CASES = [Case(f"conv3x3_{c}ch_fwd_bwd", "Conv 3x3 {}x{}x{}x{}->{} same, fwd+bwd".format(*SHAPES["full"][c]),
                   Goal(LE, 0.7, threads=2), "torch", conv3x3_case(c)) for c in (32, 64, 128)]
