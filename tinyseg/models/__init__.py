"""Models: Model (any graph of layers, and the training API), Sequential, and the U-Net."""
from ..callbacks import History
from ..saving import load_model, save_model
from .model import Model
from .sequential import Sequential
from .unet import UNet

Functional = Model

__all__ = ["Functional", "History", "Model", "Sequential", "UNet", "load_model", "save_model"]
