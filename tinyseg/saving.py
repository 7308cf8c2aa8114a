"""Save and load a model: architecture (JSON), weights, and the state of training, in one .npz file.

File layout (a NumPy .npz archive, i.e. a zip of .npy arrays; nothing in it is pickled):

    tinyseg_header   a 0-d string array holding JSON:
                       {"format": "tinyseg-model", "format_version": 1,
                        "architecture": {"class_name": ..., "config": ...},    the model's get_config()
                        "num_weights": n,
                        "class_names": [...] or null,                           model.class_names
                        "compile": {"loss": {"class_name", "config"},           what compile was given
                                    "optimizer": {"class_name", "config"},
                                    "metrics": ["accuracy", {"function": "my_metric"}, ...]} or null,
                        "optimizer_state": {"iterations": t, "slots": [[position, name], ...]},
                        "training": {"epochs_done": e, "layer_rng_states": {layer name: state}}}
    weight_0000 ...  the model's get_weights(), in order
    optimizer_0000 ...  the optimizer's slots, in the order of "slots" (Adam's m and v, momentum buffers, ...)

The architecture is read back by its class's from_config, found by name among tinyseg's classes (layers,
models, losses, optimizers) and the model classes registered with register_keras_serializable (a subclassed
model is then built for its saved input shapes): no code is stored, and only registered code is run.
So that what is saved is what comes back, save refuses what load could not rebuild (a layer, loss or
optimizer class of your own, a model class not registered). Everything after num_weights was added in the
same format version: such entries are optional, and a file without them loads as before, as a
model that is not compiled.

Resuming: load_model gives back a compiled model whose optimizer has its slots and step count, with
`model.epochs_done`; `model.fit(..., initial_epoch=model.epochs_done, seed=s)` then continues the run (see
Model.fit for why the seed makes the data order the same).

Writing goes to a temporary file in the same folder (".tinyseg-save-*.tmp"), which is then renamed over the
target: a crash mid-way leaves the old file (or none), never half a file. The new file gets the permissions
of the file it replaces, or the usual ones (0666 less the umask: 0644 under umask 022; mkstemp's 0600 is
for the temporary only). A temporary file left by a crash (the process killed between the two steps) is
removed by the next save into that folder once it is older than STALE_SECONDS.

Reading checks before it reads: every entry of the zip must be one this format names, stored or deflated;
each .npy header is read first (numpy.lib.format), and its dtype (numbers only: no objects, so no pickle),
shape and size must agree with the entry's sizes in the zip directory and stay within MAX_ARRAY_BYTES; a
deflated entry cannot claim to inflate more than deflate can (about 1032 to 1). So a small file cannot
make load_model allocate gigabytes. Then the header's keys and types are checked, then the arrays are read
with allow_pickle=False. The architecture is then built under initializers.size_ceiling(the numbers the file
stores): a config that declares more (a Dense of 2**33 units in a 9 KB file) is refused before the first
weight that would pass the ceiling is allocated. A file that is not ours, or is damaged, gets a ValueError
that says what is wrong.
"""
import contextlib
import json
import os
import re
import time
import zipfile

import numpy as np

from . import initializers
from .files import replaced_whole

FORMAT = "tinyseg-model"
WEIGHTS_FORMAT = "tinyseg-weights"
FORMAT_VERSION = 1
HEADER = "tinyseg_header"

MAX_ARRAY_BYTES = 2 ** 31          # one array: 2 GiB (a tinyseg model's largest kernel is far smaller)
MAX_TOTAL_BYTES = 2 ** 32          # all arrays of one file together: 4 GiB
MAX_HEADER_BYTES = 2 ** 26         # the JSON header: 64 MiB (as UTF-32 characters in the .npy)
DEFLATE_RATIO = 1100               # deflate expands at most ~1032 to 1; more is a crafted file
TEMP_PREFIX, TEMP_SUFFIX = ".tinyseg-save-", ".tmp"
STALE_SECONDS = 15 * 60            # a temporary file this old is a crash's leftover, not a save in progress

_ENTRY = re.compile(r"^(tinyseg_header|weight_\d{4,}|optimizer_\d{4,})\.npy$")


def register_keras_serializable(package="Custom", name=None):
    """Keras's class decorator: make a Model subclass of your own one that load_model can rebuild, under the
    name 'package>name' (name: the class's name unless given). A file names the class; loading looks it up
    here (or in load_model's custom_objects) and calls its from_config, so only classes you registered run.
    Layer subclasses are known by their class name already, and pass through unchanged."""
    from .layers.base import Layer
    from .models.model import MODEL_CLASSES, Model
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError(f"register_keras_serializable: package must be a non-empty string without '>', got "
                         f"{package!r}")

    def register(cls):
        if isinstance(cls, type) and issubclass(cls, Layer):
            return cls
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise TypeError(f"register_keras_serializable: expected a subclass of tinyseg.Model, got {cls!r}")
        registered = f"{package}>{name or cls.__name__}"
        if MODEL_CLASSES.get(registered, cls) is not cls:
            raise ValueError(f"register_keras_serializable: {registered!r} already names another class")
        MODEL_CLASSES[registered] = cls
        cls._registered_name = registered
        return cls
    return register


# --- writing ---------------------------------------------------------------------------------------------
def save_model(model, path, include_optimizer=True):
    """Write `model` to `path` (a .npz file), atomically: architecture, weights, class names, the number of
    epochs done and the state of seeded Dropout layers; with include_optimizer (and a compiled model) also
    what compile was given and the optimizer's slots and step count."""
    from . import losses, optimizers
    from .models.serialization import serialize_model
    path = os.fspath(path)
    weights = model.get_weights()
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": serialize_model(model),
              "num_weights": len(weights), "class_names": model.class_names, "compile": None}
    slots = []
    if include_optimizer and model.loss is not None:
        header["compile"] = {"loss": losses.serialize(model.loss), "optimizer": optimizers.serialize(model.optimizer),
                             "metrics": [_serialize_metric(m, model.loss) for m in getattr(model, "_metric_specs", [])]}
        state = model.optimizer.get_state(model.trainable_weights)      # positions: load_model's, below
        header["optimizer_state"] = {"iterations": state["iterations"],
                                     "slots": [[i, name] for i, name, _ in state["slots"]]}
        slots = [value for _, _, value in state["slots"]]
    header["training"] = {"epochs_done": int(getattr(model, "epochs_done", 0)),
                          "layer_rng_states": {layer.name: layer.get_rng_state() for layer in model.layers
                                               if layer.get_rng_state() is not None}}
    _write(path, header, weights, slots)


def _serialize_metric(metric, loss):
    """A metric name as given to compile; a function by its name (load_model then needs it in custom_objects).

    tinyseg's own metrics passed as functions are saved by name: the metric itself, or the one that
    metrics.get(name, ignore_index) binds to the loss's ignore_index (compile binds it again at load)."""
    from . import metrics
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "name", None)
    if isinstance(name, str) and name in metrics.METRICS:
        bound = getattr(metric, "ignore_index", None)
        if metrics.METRICS[name] is metric or (bound is not None and bound == getattr(loss, "ignore_index", None)):
            return name
    return {"function": getattr(metric, "__name__", None) or str(name)}


def save_weights(model, path):
    """Write only model.get_weights() (and their count) to `path`, atomically; load_weights reads them."""
    path = os.fspath(path)
    weights = model.get_weights()
    _write(path, {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "num_weights": len(weights)},
           weights, [])


def _write(path, header, weights, slots):
    """The archive: the JSON header, weight_0000, ..., optimizer_0000, ...; written to a temporary file, renamed."""
    arrays = {HEADER: np.array(json.dumps(header, allow_nan=False))}
    arrays.update({f"weight_{i:04d}": w for i, w in enumerate(weights)})
    arrays.update({f"optimizer_{i:04d}": s for i, s in enumerate(slots)})
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
    with replaced_whole(path, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, durable=True) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def remove_stale_temporaries(folder, older_than=STALE_SECONDS):
    """Delete the temporary files of saves that crashed (named .tinyseg-save-*.tmp, older than `older_than`
    seconds) in `folder`; returns their names. Younger ones may belong to a save still running."""
    removed = []
    now = time.time()
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
                continue
            full = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                if os.path.isfile(full) and now - os.path.getmtime(full) > older_than:
                    os.remove(full)
                    removed.append(name)
    return removed


# --- reading ---------------------------------------------------------------------------------------------
def load_model(path, compile=True, custom_objects=None):
    """Read a model written by save_model. Raises FileNotFoundError or a ValueError naming what is wrong.

    compile: compile the model as it was saved, with the optimizer's state (False: an uncompiled model).
    custom_objects: {name: function} for metric functions of your own that the model was compiled with, and
    {class name: class} for a model class of your own not registered with register_keras_serializable.
    """
    from .models.serialization import deserialize_model
    path = os.fspath(path)
    header, arrays = _read(path, "load_model", FORMAT)
    stored = sum(w.size for w in arrays["weights"])
    try:
        with initializers.size_ceiling(stored):     # the model built may hold no more numbers than the file
            model = deserialize_model(header["architecture"], custom_objects)
    except initializers.CeilingExceeded as err:
        raise ValueError(f"load_model: the weights in {path!r} do not fit its architecture, which declares more "
                         f"than the {stored} numbers the file stores ({err}); refused before allocating") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"load_model: {path!r} holds an architecture this tinyseg cannot rebuild "
                         f"({type(err).__name__}: {err})") from None
    try:
        model.set_weights(arrays["weights"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"load_model: the weights in {path!r} do not fit its architecture ({err})") from None
    try:
        model.class_names = header.get("class_names")
        if compile and header.get("compile") is not None:
            _compile_as_saved(model, header, arrays["optimizer"], custom_objects)
        _restore_training(model, header.get("training") or {})
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"load_model: {path!r}: {err}") from None
    return model


def _compile_as_saved(model, header, slots, custom_objects):
    from . import losses, optimizers
    spec = header["compile"]
    metrics = []
    for m in spec["metrics"]:
        if isinstance(m, str):
            metrics.append(m)
            continue
        name = m["function"]
        if not isinstance(custom_objects, dict) or not callable(custom_objects.get(name)):
            raise ValueError(f"the model was compiled with the metric function {name!r}; pass "
                             f"load_model(path, custom_objects={{{name!r}: {name}}}), or compile=False")
        metrics.append(custom_objects[name])
    model.compile(optimizer=optimizers.deserialize(spec["optimizer"]), loss=losses.deserialize(spec["loss"]),
                  metrics=metrics)
    state = header.get("optimizer_state") or {"iterations": 0, "slots": []}
    params = model.trainable_weights
    model.optimizer.set_state({"iterations": state["iterations"],
                               "slots": [(i, name, value) for (i, name), value in zip(state["slots"], slots)]},
                              params)


def _restore_training(model, training):
    model.epochs_done = training.get("epochs_done", 0)
    layers = {layer.name: layer for layer in model.layers}
    for name, state in training.get("layer_rng_states", {}).items():
        if name not in layers:
            raise ValueError(f"the file holds a generator state for a layer {name!r} that the model does not have")
        layers[name].set_rng_state(state)


def load_weights(model, path):
    """Set model's weights from a file of save_weights (or save_model): every array is checked first."""
    _, arrays = _read(path, "load_weights", None)
    try:
        model.set_weights(arrays["weights"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"load_weights: the weights in {os.fspath(path)!r} do not fit the model ({err})") from None


def _read(path, what, expected_format):
    """(header, {'weights': [...], 'optimizer': [...]}) of a tinyseg file, every part checked (module
    docstring); expected_format None accepts a model or a weights file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no file at {path!r}")

    def refuse(reason):
        return ValueError(f"{what}: {path!r} is damaged or not a tinyseg model file ({reason})")

    try:
        with zipfile.ZipFile(path) as archive:
            entries = _check_entries(archive, os.path.getsize(path), refuse)
            if HEADER not in entries:
                raise ValueError(f"{what}: {path!r} is not a tinyseg model file (no '{HEADER}' entry)")
            header = _read_header(archive, entries[HEADER], refuse)
            formats = (FORMAT, WEIGHTS_FORMAT) if expected_format is None else (expected_format,)
            if header.get("format") not in formats:
                raise ValueError(f"{what}: {path!r} is not a tinyseg model file")
            version = header.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
                raise ValueError(f"{what}: {path!r} has format version {version!r}; this tinyseg reads version "
                                 f"{FORMAT_VERSION}")
            _check_header(header, entries, refuse)
            arrays = {"weights": [_read_array(archive, entries[f"weight_{i:04d}"], refuse)
                                  for i in range(header["num_weights"])],
                      "optimizer": [_read_array(archive, entries[f"optimizer_{i:04d}"], refuse)
                                    for i in range(len((header.get("optimizer_state") or {}).get("slots", [])))]}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RecursionError) as err:
        raise refuse(f"{type(err).__name__}: {err}") from None
    return header, arrays


def _check_entries(archive, file_size, refuse):
    """{entry name without .npy: (ZipInfo, shape, dtype)}: names, compression and sizes checked, and each
    .npy header read and checked against its entry, before any array data is read."""
    entries, total = {}, 0
    infos = archive.infolist()
    if sum(info.compress_size for info in infos) > file_size:
        raise refuse("its entries claim more compressed bytes than the file holds")
    for info in infos:
        key = _check_zip_entry(info, entries, refuse)
        shape, dtype, offset = _read_npy_header(archive, info, refuse)
        total += _check_array_header(key, info, shape, dtype, offset, refuse)
        if total > MAX_TOTAL_BYTES:
            raise refuse(f"its arrays declare more than {MAX_TOTAL_BYTES} bytes together")
        entries[key] = (info, shape, dtype)
    return entries


def _limit(key):
    return MAX_HEADER_BYTES if key == HEADER else MAX_ARRAY_BYTES


def _check_zip_entry(info, seen, refuse):
    """The entry's key (its name without .npy): a name the format gives, once, stored or deflated, and a size
    within the limit that deflate could really inflate to."""
    if not _ENTRY.match(info.filename):
        raise refuse(f"it holds an entry {info.filename!r} that the format does not name")
    key = info.filename[:-4]
    if key in seen:
        raise refuse(f"the entry {info.filename!r} appears twice")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise refuse(f"the entry {info.filename!r} uses compression method {info.compress_type}")
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > DEFLATE_RATIO * info.compress_size + 1024:
        raise refuse(f"the entry {info.filename!r} claims to inflate from {info.compress_size} to "
                     f"{info.file_size} bytes")
    if info.file_size > _limit(key) + 65536:
        raise refuse(f"the entry {info.filename!r} declares {info.file_size} bytes, more than the limit "
                     f"{_limit(key)}")
    return key


def _read_npy_header(archive, info, refuse):
    """(shape, dtype, where the data starts) from the entry's .npy header, without reading the data."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version}")
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        except ValueError as err:
            raise refuse(f"the entry {info.filename!r} has no valid .npy header: {err}") from None
        return shape, dtype, f.tell()


def _check_array_header(key, info, shape, dtype, offset, refuse):
    """The bytes of data the header declares: numbers (a string for the header), within the limit, and just
    what the entry holds."""
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in ("U" if key == HEADER else "fiu"):
        raise refuse(f"the entry {info.filename!r} has dtype {dtype}; expected "
                     + ("a string" if key == HEADER else "float or integer numbers"))
    if key == HEADER and shape != ():
        raise refuse(f"the header entry has shape {shape}; expected a 0-d string")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > _limit(key):
        raise refuse(f"the entry {info.filename!r} declares {shape} {dtype}: {nbytes} bytes, more than the "
                     f"limit {_limit(key)}")
    if offset + nbytes != info.file_size:
        raise refuse(f"the entry {info.filename!r} declares {shape} {dtype} ({nbytes} bytes of data) but holds "
                     f"{info.file_size - offset}")
    return nbytes


def _read_array(archive, entry, refuse):
    info, shape, dtype = entry
    with archive.open(info) as f:
        try:
            a = np.lib.format.read_array(f, allow_pickle=False)
        except ValueError as err:
            raise refuse(f"the entry {info.filename!r} cannot be read: {err}") from None
    if a.shape != shape or a.dtype != dtype:
        raise refuse(f"the entry {info.filename!r} changed between its header and its data")
    return a


def _read_header(archive, entry, refuse):
    try:
        header = json.loads(str(_read_array(archive, entry, refuse)))
    except json.JSONDecodeError as err:
        raise refuse(f"its header is not JSON: {err}") from None
    if not isinstance(header, dict):
        raise refuse(f"its header is a JSON {type(header).__name__}, not an object")
    return header


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_header(header, entries, refuse):
    """Required keys and the type of every key this tinyseg reads; the arrays the header names must be
    exactly the archive's entries."""
    n = header.get("num_weights")
    if not _is_count(n):
        raise refuse(f"num_weights must be a non-negative integer, got {n!r}")
    if header.get("format") == FORMAT:
        if not _is_spec(header.get("architecture")):
            raise refuse("its architecture must be {'class_name': str, 'config': {...}}")
    names = header.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(c, str) for c in names)):
        raise refuse(f"class_names must be a list of strings or null, got {names!r}")
    _check_compile(header.get("compile"), refuse)
    slots = _check_optimizer_state(header.get("optimizer_state"), refuse)
    _check_training(header.get("training"), refuse)
    expected = {HEADER} | {f"weight_{i:04d}" for i in range(n)} | {f"optimizer_{i:04d}" for i in range(len(slots))}
    if set(entries) != expected:
        missing, extra = sorted(expected - set(entries)), sorted(set(entries) - expected)
        raise refuse("its entries do not match its header"
                     + (f": missing {missing}" if missing else "") + (f": unexpected {extra}" if extra else ""))


def _is_spec(value):
    """{'class_name': str, 'config': {...}}, as serialize_model, losses.serialize and optimizers.serialize write."""
    return (isinstance(value, dict) and isinstance(value.get("class_name"), str)
            and isinstance(value.get("config"), dict))


def _check_compile(spec, refuse):
    if spec is None:
        return
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    if not (isinstance(spec, dict) and _is_spec(spec.get("loss")) and _is_spec(spec.get("optimizer"))
            and isinstance(metrics, list)
            and all(isinstance(m, str) or (isinstance(m, dict) and isinstance(m.get("function"), str))
                    for m in metrics)):
        raise refuse("its compile settings must be {'loss': {...}, 'optimizer': {...}, 'metrics': [...]}")


def _check_optimizer_state(state, refuse):
    """The [[position, name], ...] of the optimizer's slots ([] without a state)."""
    if state is None:
        return []
    slots = state.get("slots") if isinstance(state, dict) else None
    if not (isinstance(state, dict) and _is_count(state.get("iterations")) and isinstance(slots, list)
            and all(isinstance(s, list) and len(s) == 2 and _is_count(s[0]) and isinstance(s[1], str)
                    for s in slots)):
        raise refuse("its optimizer_state must be {'iterations': int, 'slots': [[position, name], ...]}")
    return slots


def _check_training(training, refuse):
    if training is None:
        return
    rng_states = training.get("layer_rng_states", {}) if isinstance(training, dict) else None
    if not (isinstance(training, dict) and _is_count(training.get("epochs_done", 0))
            and isinstance(rng_states, dict) and all(isinstance(v, dict) for v in rng_states.values())):
        raise refuse("its training entry must be {'epochs_done': int, 'layer_rng_states': {name: {...}}}")
