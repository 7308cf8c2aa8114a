"""tinyseg: a from-scratch deep-learning framework for image segmentation, written to be read."""
from .backend import floatx, set_floatx, set_random_seed

__version__ = "0.1.0"
