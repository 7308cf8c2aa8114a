"""The 3x3 convolution rows at 32, 64 and 128 channels: the layers that Conv2D's 'auto' rule hands to
Winograd's F(4x4, 3x3) (tinyseg/winograd.py), forward and backward (input and kernel gradients), against
PyTorch's convolution in both memory layouts. Registered in cases.py's CASES.

The shapes are those of a U-Net's deeper levels at batch 4: each halving of the image doubles the channels.
"""
from .cases import LE, Case, Goal, conv3x3_same_fwd_bwd

SHAPES = {"full": {32: (4, 64, 64, 32, 32), 64: (4, 32, 32, 64, 64), 128: (4, 16, 16, 128, 128)},
          "smoke": {32: (1, 8, 8, 32, 32), 64: (1, 4, 4, 64, 64), 128: (1, 4, 4, 128, 128)}}
SHAPES["quick"] = SHAPES["full"]


def conv3x3_case(channels):
    """The builder of the fwd+bwd row at `channels` input and output channels ('same' padding)."""
    def build(size, ctx):
        return conv3x3_same_fwd_bwd(SHAPES[ctx["mode"]][channels], ctx, seed=channels)
    return build


CONV_CASES = [Case(f"conv3x3_{c}ch_fwd_bwd", "Conv 3x3 {}x{}x{}x{}->{} same, fwd+bwd".format(*SHAPES["full"][c]),
                   Goal(LE, 0.7, threads=2), "torch", conv3x3_case(c)) for c in (32, 64, 128)]
