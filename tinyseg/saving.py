"""Save and load a model: architecture (JSON) and weights (arrays) in one .npz file.

File layout (a NumPy .npz archive, i.e. a zip of .npy arrays; nothing in it is pickled):

    tinyseg_header   a 0-d string array holding JSON: {"format": "tinyseg-model", "format_version": 1,
                     "architecture": {"class_name": ..., "config": ...}, "num_weights": n}
                     (the architecture is the model's get_config(), read back by its class's from_config,
                     found by name among tinyseg's model classes: no code is stored or run)
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
WEIGHTS_FORMAT = "tinyseg-weights"
FORMAT_VERSION = 1
HEADER = "tinyseg_header"


def save_model(model, path):
    """Write `model` (architecture + weights) to `path` (a .npz file), atomically."""
    path = os.fspath(path)
    weights = model.get_weights()
    from .models.model import serialize_model
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": serialize_model(model),
              "num_weights": len(weights)}
    _write(path, header, weights)


def _write(path, header, weights):
    """The archive: the JSON header and weight_0000, weight_0001, ...; written to a temporary file, renamed."""
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
    from .models.model import deserialize_model
    header, weights = _read(path, "load_model", FORMAT)
    try:
        model = deserialize_model(header["architecture"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"load_model: {os.fspath(path)!r} holds an architecture this tinyseg cannot rebuild "
                         f"({type(err).__name__}: {err})") from None
    try:
        model.set_weights(weights)
    except ValueError as err:
        raise ValueError(f"load_model: the weights in {path!r} do not fit its architecture ({err})") from None
    return model


def save_weights(model, path):
    """Write only model.get_weights() (and their count) to `path`, atomically; load_weights reads them."""
    path = os.fspath(path)
    weights = model.get_weights()
    _write(path, {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "num_weights": len(weights)},
           weights)


def load_weights(model, path):
    """Set model's weights from a file of save_weights (or save_model): every array is checked first."""
    header, weights = _read(path, "load_weights", None)
    try:
        model.set_weights(weights)
    except ValueError as err:
        raise ValueError(f"load_weights: the weights in {os.fspath(path)!r} do not fit the model ({err})") from None


def _read(path, what, expected_format):
    """(header, weights) of a tinyseg file; expected_format None accepts a model or a weights file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if HEADER not in archive.files:
                raise ValueError(f"{what}: {path!r} is not a tinyseg model file (no '{HEADER}' entry)")
            header = json.loads(str(archive[HEADER]))
            formats = (FORMAT, WEIGHTS_FORMAT) if expected_format is None else (expected_format,)
            if not isinstance(header, dict) or header.get("format") not in formats:
                raise ValueError(f"{what}: {path!r} is not a tinyseg model file")
            if header.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{what}: {path!r} has format version {header.get('format_version')}; "
                                 f"this tinyseg reads version {FORMAT_VERSION}")
            n = header["num_weights"]
            weights = [archive[f"weight_{i:04d}"] for i in range(n)]
    except (zipfile.BadZipFile, EOFError, KeyError, json.JSONDecodeError, OSError) as err:
        raise ValueError(f"{what}: {path!r} is damaged or not a tinyseg model file ({err})") from None
    except ValueError as err:
        if str(err).startswith(what):
            raise
        raise ValueError(f"{what}: {path!r} is damaged or not a tinyseg model file ({err})") from None
    return header, weights
