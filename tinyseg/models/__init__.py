"""Models: the Keras-like training API (model.py), Sequential, and the U-Net."""
from .model import Model
from .progress import History
from .sequential import Sequential
