"""The PyTorch twins of the benchmarked tinyseg models, built by hand, layer for layer.

PyTorch is NCHW by default; `channels_last=True` stores the same tensors as NHWC in memory (the layout
tinyseg always uses), which PyTorch's CPU convolutions and pooling often prefer. Settings that change the
arithmetic follow Keras, as tinyseg does: Adam epsilon 1e-7, BatchNorm epsilon 1e-3 and momentum 0.01
(Keras's 0.99 counted PyTorch's way).
"""
import torch
from torch import nn


def seed_cnn(num_classes=10, input_hw=(32, 32), channels=3):
    """Conv(32,3,relu) - MaxPool(2) - Conv(64,3,relu) - MaxPool(2) - Conv(64,3,relu) - Flatten - Dense(64,relu)
    - Dense(num_classes): the seed CNN, returning logits (the loss applies the softmax)."""
    h, w = input_hw
    h, w = (h - 2) // 2, (w - 2) // 2
    h, w = (h - 2) // 2, (w - 2) // 2
    h, w = h - 2, w - 2
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * h * w, 64), nn.ReLU(), nn.Linear(64, num_classes))


def _block(c_in, filters, batch_norm):
    layers = []
    for c in (c_in, filters):
        layers.append(nn.Conv2d(c, filters, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """tinyseg.models.unet.UNet with upsampling='transpose', in PyTorch: same blocks, same channel counts,
    the same [upsampled | skip] channel order in every concatenation. Returns logits (N, K, H, W)."""

    def __init__(self, in_channels=3, num_classes=4, depth=3, base_filters=16, batch_norm=True):
        super().__init__()
        filters = [base_filters * 2 ** i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        c = in_channels
        for f in filters[:-1]:
            self.encoders.append(_block(c, f, batch_norm))
            c = f
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _block(c, filters[-1], batch_norm)
        c = filters[-1]
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for f in reversed(filters[:-1]):
            self.ups.append(nn.ConvTranspose2d(c, f, 2, stride=2))
            self.decoders.append(_block(2 * f, f, batch_norm))
            c = f
        self.head = nn.Conv2d(c, num_classes, 1)

    def forward(self, x):
        skips = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class XceptionUNet(nn.Module):
    """The Xception-style U-Net of tests/xception_unet.py with PyTorch's own modules (the idiomatic twin, not
    an export): separable convolutions as a grouped 3x3 and a 1x1, 'same' paddings as symmetric padding=1
    (Keras pads a 3x3 stride-2 pooling of an even size at the bottom/right only; the work is the same)."""

    def __init__(self, in_channels=3, num_classes=4, filters=(32, 64, 128, 256)):
        super().__init__()
        entry, downs = filters[0], filters[1:]

        def separable(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in), nn.Conv2d(c_in, c_out, 1))

        self.entry = nn.Sequential(nn.Conv2d(in_channels, entry, 3, stride=2, padding=1),
                                   nn.BatchNorm2d(entry, eps=1e-3, momentum=0.01), nn.ReLU())
        self.down, self.down_skip = nn.ModuleList(), nn.ModuleList()
        c = entry
        for f in downs:
            self.down.append(nn.Sequential(
                nn.ReLU(), separable(c, f), nn.BatchNorm2d(f, eps=1e-3, momentum=0.01),
                nn.ReLU(), separable(f, f), nn.BatchNorm2d(f, eps=1e-3, momentum=0.01),
                nn.MaxPool2d(3, stride=2, padding=1)))
            self.down_skip.append(nn.Conv2d(c, f, 1, stride=2))
            c = f
        self.up, self.up_skip = nn.ModuleList(), nn.ModuleList()
        for f in tuple(reversed(downs)) + (entry,):
            self.up.append(nn.Sequential(
                nn.ReLU(), nn.ConvTranspose2d(c, f, 3, padding=1), nn.BatchNorm2d(f, eps=1e-3, momentum=0.01),
                nn.ReLU(), nn.ConvTranspose2d(f, f, 3, padding=1), nn.BatchNorm2d(f, eps=1e-3, momentum=0.01),
                nn.Upsample(scale_factor=2)))
            self.up_skip.append(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c, f, 1)))
            c = f
        self.head = nn.Conv2d(c, num_classes, 3, padding=1)

    def forward(self, x):
        x = self.entry(x)
        for block, skip in zip(self.down, self.down_skip):
            x = block(x) + skip(x)
        for block, skip in zip(self.up, self.up_skip):
            x = block(x) + skip(x)
        return self.head(x)


def unet_from_interop(model):
    """PyTorch U-Net from tinyseg.interop.to_torch(model) if that module exists, else None.

    The result is used only if it maps an NCHW batch to (N, K, H, W), as the hand-built twin does.
    """
    try:
        from tinyseg.interop import to_torch
    except Exception:
        return None
    try:
        net = to_torch(model)
        h, w, c = model.input_shape
        with torch.no_grad():
            out = net(torch.zeros(1, c, h, w))
        if tuple(out.shape) != (1, model.output_shape[-1], h, w):
            return None
        return net
    except Exception:
        return None


def count_params(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
