"""Merge layers: several arrays in, one array out (a U-Net's skip connection, a residual block's sum).

    merge_base.py           the contract every merge keeps (a list in, a list of gradients back), and why a
                            merge is the dual of a branch
    elementwise_merges.py   Add, Subtract, Multiply, Average
    concatenate.py          Concatenate

The function forms add(inputs), subtract, multiply, average and concatenate(inputs, axis=-1) are Keras's:
each makes the layer and calls it on the list.
"""
from .concatenate import Concatenate
from .elementwise_merges import Add, Average, Multiply, Subtract

__all__ = ["Add", "Average", "Concatenate", "Multiply", "Subtract", "add", "average", "concatenate", "multiply",
           "subtract"]


# --- Keras's function forms: make the layer, call it on the list ------------------------------------------
def add(inputs, **kwargs):
    """add([x_1, x_2, ...]) = Add(**kwargs)([x_1, x_2, ...])."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """subtract([x_1, x_2]) = Subtract(**kwargs)([x_1, x_2])."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """multiply([x_1, x_2, ...]) = Multiply(**kwargs)([x_1, x_2, ...])."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """average([x_1, x_2, ...]) = Average(**kwargs)([x_1, x_2, ...])."""
    return Average(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """concatenate([x_1, x_2, ...], axis) = Concatenate(axis=axis, **kwargs)([x_1, x_2, ...])."""
    return Concatenate(axis=axis, **kwargs)(inputs)
