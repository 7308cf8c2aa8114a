"""Models: Model (any graph of layers, and the training API), Sequential, and the architecture builders.

ARCHITECTURES maps a name to a builder called as `ARCHITECTURES[name](input_shape, num_classes, **knobs)`,
which returns an uncompiled Model: the four classic segmentation networks, one file each.

    fcn8s          fcn.py      Long et al. 2015: transposed convolutions, skip scores      output stride 8 (32)
    segnet         segnet.py   Badrinarayanan et al. 2017: unpooling with the encoder's indices     32
    unet           unet.py     Ronneberger et al. 2015: skip concatenations                    2**depth
    deeplabv3plus  deeplab.py  Chen et al. 2018: atrous convolutions, ASPP, bilinear decoder          16
"""
from ..callbacks import History
from ..saving import load_model, save_model
from .deeplab import deeplabv3plus
from .fcn import fcn8s
from .model import Model
from .segnet import segnet
from .sequential import Sequential
from .unet import UNet, unet

Functional = Model

ARCHITECTURES = {"fcn8s": fcn8s, "segnet": segnet, "unet": unet, "deeplabv3plus": deeplabv3plus}

__all__ = ["ARCHITECTURES", "Functional", "History", "Model", "Sequential", "UNet", "deeplabv3plus", "fcn8s",
           "load_model", "save_model", "segnet", "unet"]
