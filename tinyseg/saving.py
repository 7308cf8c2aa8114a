"""Save and load a model: architecture (JSON) and weights (arrays) in one .npz file.

File layout (a NumPy .npz archive, i.e. a zip of .npy arrays; nothing in it is pickled):

    tinyseg_header   a 0-d string array holding JSON: {"format": "tinyseg-model", "format_version": 1,
                     "architecture": {"class_name": ..., "config": ...}, "num_weights": n}
    weight_0000 ...  the model's get_weights(), in order

Writing goes to a temporary file in the same folder, which is then renamed over the target: a crash mid-way
leaves the old file (or none), never half a file. Reading uses np.load(..., allow_pickle=False), so a file
cannot run code; a file that is not ours, or is damaged, gets a ValueError that says so.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "tinyseg-model"
FORMAT_VERSION = 1
HEADER = "tinyseg_header"


def layer_classes():
    from . import layers
    return {name: getattr(layers, name) for name in layers.__all__}


def layer_to_config(layer):
    config = layer.get_config()
    if layer.input_shape is not None:
        config["input_shape"] = list(layer.input_shape) if not isinstance(layer.input_shape, list) else \
            [list(s) for s in layer.input_shape]
    return {"class_name": type(layer).__name__, "config": config}


def layer_from_config(spec):
    classes = layer_classes()
    name = spec.get("class_name")
    if name not in classes:
        raise ValueError(f"unknown layer class {name!r} in the model file (known: {sorted(classes)})")
    config = dict(spec["config"])
    config.pop("input_shape", None)
    return classes[name](**config)


def model_to_config(model):
    return {"class_name": type(model).__name__, "config": model.get_config()}


def model_from_config(spec):
    from .models import Sequential
    from .models.unet import UNet
    name = spec.get("class_name")
    if name == "UNet":
        return UNet(**spec["config"])
    if name == "Sequential":
        model = Sequential(name=spec["config"]["name"])
        layer_specs = spec["config"]["layers"]
        for i, layer_spec in enumerate(layer_specs):
            layer = layer_from_config(layer_spec)
            if i == 0 and "input_shape" in layer_spec["config"]:
                layer.build(tuple(layer_spec["config"]["input_shape"]))
            model.add(layer)
        return model
    raise ValueError(f"unknown model class {name!r} in the model file")


def save_model(model, path):
    """Write `model` (architecture + weights) to `path` (a .npz file), atomically."""
    path = os.fspath(path)
    weights = model.get_weights()
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": model_to_config(model),
              "num_weights": len(weights)}
    arrays = {HEADER: np.array(json.dumps(header))}
    arrays.update({f"weight_{i:04d}": w for i, w in enumerate(weights)})
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_model(path):
    """Read a model written by save_model. Raises FileNotFoundError or a ValueError naming what is wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if HEADER not in archive.files:
                raise ValueError(f"load_model: {path!r} is not a tinyseg model file (no '{HEADER}' entry)")
            header = json.loads(str(archive[HEADER]))
            if header.get("format") != FORMAT:
                raise ValueError(f"load_model: {path!r} is not a tinyseg model file")
            if header.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"load_model: {path!r} has format version {header.get('format_version')}; "
                                 f"this tinyseg reads version {FORMAT_VERSION}")
            n = header["num_weights"]
            weights = [archive[f"weight_{i:04d}"] for i in range(n)]
    except (zipfile.BadZipFile, EOFError, KeyError, json.JSONDecodeError, OSError) as err:
        raise ValueError(f"load_model: {path!r} is damaged or not a tinyseg model file ({err})") from None
    except ValueError as err:
        if str(err).startswith("load_model"):
            raise
        raise ValueError(f"load_model: {path!r} is damaged or not a tinyseg model file ({err})") from None
    model = model_from_config(header["architecture"])
    try:
        model.set_weights(weights)
    except ValueError as err:
        raise ValueError(f"load_model: the weights in {path!r} do not fit its architecture ({err})") from None
    return model
