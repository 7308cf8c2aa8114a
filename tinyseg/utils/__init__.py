"""Helpers with Keras's names: `keras.utils.to_categorical`, `PyDataset` (and `Sequence`),
`set_random_seed`, `plot_model`, `register_keras_serializable` (also in tinyseg.saving, as in Keras)."""
from ..backend import set_random_seed
from ..saving import register_keras_serializable
from .categorical import to_categorical
from .pydataset import PyDataset, Sequence


def plot_model(model, to_file="model.png", show_shapes=False, **kwargs):
    """Draw the model's graph to a PNG file with matplotlib (tinyseg/utils/drawing.py)."""
    from .drawing import plot_model as draw  # matplotlib is imported only when drawing
    return draw(model, to_file=to_file, show_shapes=show_shapes, **kwargs)


__all__ = ["PyDataset", "Sequence", "plot_model", "register_keras_serializable", "set_random_seed",
           "to_categorical"]
