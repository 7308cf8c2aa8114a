"""Files load_model must refuse (issue 12), each with a ValueError that says what is wrong, before it reads
any array data: a header of the wrong types or keys, a version that is not the int 1, entries that the
format does not name, arrays whose .npy headers declare shapes or dtypes the file cannot hold, entries that
claim to inflate beyond what deflate can."""
import io
import json
import zipfile

import numpy as np
import pytest

from tinyseg import saving
from tinyseg.layers import BatchNormalization, Conv2D
from tinyseg.models import Sequential
from tinyseg.saving import load_model, load_weights, save_model


def small_model():
    model = Sequential([Conv2D(2, 3, padding="same", input_shape=(4, 4, 1)), BatchNormalization(),
                        Conv2D(2, 1, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((4, 4, 4, 1), dtype=np.float32)
    model.fit(x, (x[..., 0] > 0.5).astype(int), epochs=1, verbose=0)
    return model


def entries_of(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_declaring(shape, descr="<f4", data=b"\0" * 16):
    """A .npy entry whose header declares `shape` and `descr` but holds only `data`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def header_of(entries):
    return json.loads(str(np.lib.format.read_array(io.BytesIO(entries["tinyseg_header.npy"]))))


def write(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "m.npz"
    save_model(small_model(), path)
    return entries_of(path)


def with_header(change):
    def make(entries):
        header = header_of(entries)
        change(header)
        return {**entries, "tinyseg_header.npy": npy(np.array(json.dumps(header)))}
    return make


def setting(key, value):
    def change(header):
        header[key] = value
    return change


def deleting(key):
    def change(header):
        del header[key]
    return change


def with_entry(name, data):
    return lambda entries: {**entries, name: data}


def without_entry(name):
    return lambda entries: {k: v for k, v in entries.items() if k != name}


CASES = [
    # the header
    ("version as a string", with_header(setting("format_version", "1")), "format version '1'"),
    ("version as a bool", with_header(setting("format_version", True)), "format version True"),
    ("version as a float", with_header(setting("format_version", 1.0)), "format version 1.0"),
    ("version 2", with_header(setting("format_version", 2)), "format version 2"),
    ("no version", with_header(deleting("format_version")), "format version None"),
    ("another format", with_header(setting("format", "keras")), "not a tinyseg model file"),
    ("num_weights as a string", with_header(setting("num_weights", "8")), "num_weights must be a non-negative"),
    ("num_weights negative", with_header(setting("num_weights", -1)), "num_weights must be a non-negative"),
    ("num_weights one too many", lambda e: with_header(setting("num_weights", header_of(e)["num_weights"] + 1))(e),
     "missing \\['weight_0008'\\]"),
    ("no architecture", with_header(deleting("architecture")), "architecture must be"),
    ("architecture a list", with_header(setting("architecture", [])), "architecture must be"),
    ("class_names a string", with_header(setting("class_names", "abc")), "class_names must be a list"),
    ("class_names numbers", with_header(setting("class_names", [1, 2])), "class_names must be a list"),
    ("compile without a loss", with_header(lambda h: h["compile"].pop("loss")), "compile settings"),
    ("compile metrics a string", with_header(lambda h: h["compile"].update(metrics="accuracy")), "compile settings"),
    ("an unknown loss", with_header(lambda h: h["compile"]["loss"].update(class_name="Hinge")), "unknown loss"),
    ("an unknown optimizer", with_header(lambda h: h["compile"]["optimizer"].update(class_name="Lion")),
     "unknown optimizer"),
    ("an optimizer config with a NaN-like rate", with_header(lambda h: h["compile"]["optimizer"]["config"].update(
        learning_rate=-1.0)), "learning_rate must be > 0"),
    ("iterations negative", with_header(lambda h: h["optimizer_state"].update(iterations=-3)), "optimizer_state"),
    ("a slot that is not a pair", with_header(lambda h: h["optimizer_state"]["slots"].__setitem__(0, [0])),
     "optimizer_state"),
    ("a slot of an unknown name", with_header(lambda h: h["optimizer_state"]["slots"].__setitem__(0, [0, "u"])),
     "unknown slot 'u'"),
    ("a slot for a parameter the model lacks",
     with_header(lambda h: h["optimizer_state"]["slots"].__setitem__(0, [99, "m"])), "slot position 99"),
    ("epochs_done negative", with_header(lambda h: h["training"].update(epochs_done=-1)), "training entry"),
    ("a generator state for a missing layer", with_header(lambda h: h["training"].update(
        layer_rng_states={"nope": {}})), "layer 'nope'|'nope' that the model does not have"),
    ("a header that is a JSON list", with_entry("tinyseg_header.npy", npy(np.array("[1, 2]"))), "not an object"),
    ("a header that is not JSON", with_entry("tinyseg_header.npy", npy(np.array("{oops"))), "not JSON"),
    ("a header that is an array of strings", with_entry("tinyseg_header.npy", npy(np.array(["{}", "{}"]))),
     "0-d string"),
    ("a header declaring 400 MB of characters", with_entry("tinyseg_header.npy", npy_declaring((), "<U100000000")),
     "more than the limit"),
    # the entries
    ("an entry the format does not name", with_entry("evil.npy", npy(np.zeros(2))), "entry 'evil.npy'"),
    ("a missing weight", without_entry("weight_0003.npy"), "missing \\['weight_0003'\\]"),
    ("a missing optimizer slot", without_entry("optimizer_0000.npy"), "missing \\['optimizer_0000'\\]"),
    ("an extra weight", with_entry("weight_0099.npy", npy(np.zeros(2))), "unexpected \\['weight_0099'\\]"),
    ("an object array (a pickle)", with_entry("weight_0000.npy", npy(np.array([None, 1], dtype=object))),
     "dtype object"),
    ("complex weights", with_entry("weight_0001.npy", npy(np.zeros(2, np.complex64))), "dtype complex64"),
    ("a structured dtype", with_entry("weight_0001.npy", npy(np.zeros(2, [("a", "<f4"), ("b", "<f4")]))),
     "float or integer numbers"),
    ("a weight declaring a terabyte", with_entry("weight_0000.npy", npy_declaring((10 ** 12,))),
     "more than the limit"),
    ("a weight declaring more than it holds", with_entry("weight_0000.npy", npy_declaring((3, 3, 1, 2))),
     "holds 16"),
    ("a weight of the wrong shape", with_entry("weight_0001.npy", npy(np.zeros(5, np.float32))),
     "do not fit its architecture"),
    ("a slot of the wrong shape", with_entry("optimizer_0000.npy", npy(np.zeros(5, np.float32))),
     "slot 'm' of parameter 0 has shape"),
    ("a slot holding NaN", lambda e: with_entry("optimizer_0000.npy", npy(np.full(
        np.lib.format.read_array(io.BytesIO(e["optimizer_0000.npy"])).shape, np.nan, np.float32)))(e), "NaN or inf"),
    ("no .npy header", with_entry("weight_0000.npy", b"garbage, not an array"), "no valid .npy header"),
]


@pytest.mark.parametrize("spoil, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_spoiled_file_is_refused_with_a_reason(tmp_path, good, spoil, match):
    path = tmp_path / "bad.npz"
    write(path, spoil(dict(good)))
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_the_good_entries_load(tmp_path, good):
    path = tmp_path / "same.npz"
    write(path, dict(good))
    assert load_model(path).optimizer.iterations == 1


def test_compressed_entries_load_and_an_impossible_inflation_is_refused(tmp_path, good, monkeypatch):
    path = tmp_path / "deflated.npz"
    write(path, dict(good), zipfile.ZIP_DEFLATED)
    assert load_model(path).optimizer.iterations == 1                 # np.savez_compressed files are fine
    monkeypatch.setattr(saving, "DEFLATE_RATIO", 1)                   # pretend deflate could not go beyond 1:1
    with pytest.raises(ValueError, match="claims to inflate from"):
        load_model(path)


def test_other_compression_methods_are_refused(tmp_path, good):
    path = tmp_path / "bz2.npz"
    write(path, dict(good), zipfile.ZIP_BZIP2)
    with pytest.raises(ValueError, match="compression method 12"):
        load_model(path)


def test_load_weights_refuses_a_spoiled_file_and_leaves_the_model_alone(tmp_path, good):
    path = tmp_path / "bad.npz"
    entries = dict(good)
    entries["weight_0005.npy"] = npy(np.full(2, np.inf, np.float32))   # the moving variance, last but two
    write(path, entries)
    model = small_model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="moving_variance' holds NaN or inf"):
        load_weights(model, path)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_a_weights_file_is_not_a_model_file(tmp_path):
    model = small_model()
    model.save_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="not a tinyseg model file"):
        load_model(tmp_path / "w.npz")
    load_weights(model, tmp_path / "w.npz")


def _set_key(config, key, value):
    """Every `key` in a nested JSON config set to `value`; how many there were."""
    if isinstance(config, dict):
        found = int(key in config)
        if found:
            config[key] = value
        return found + sum(_set_key(v, key, value) for v in config.values())
    if isinstance(config, list):
        return sum(_set_key(v, key, value) for v in config)
    return 0


@pytest.mark.parametrize("key, huge", [("units", 2 ** 36), ("filters", 2 ** 36)])
def test_a_huge_layer_declared_by_a_small_file_is_refused_before_it_is_allocated(tmp_path, key, huge):
    """A few KB whose config declares a Dense (or Conv2D) of 2**36 units: 4 TiB of float64 draws for the
    kernel. load_model refuses it, naming the file and the layer, before asking for that memory (without the
    ceiling, numpy's MemoryError, or on a machine that lends it, the memory itself)."""
    from tinyseg.layers import Dense, Flatten
    model = Sequential([Conv2D(2, 3, input_shape=(4, 4, 1)), Flatten(), Dense(3)])
    good_path = tmp_path / "good.npz"
    model.save(good_path)
    entries = entries_of(good_path)
    header = header_of(entries)
    assert _set_key(header["architecture"], key, huge) == 1
    entries["tinyseg_header.npy"] = npy(np.array(json.dumps(header)))
    path = tmp_path / "huge.npz"
    write(path, entries)
    assert path.stat().st_size < 16_000
    with pytest.raises(ValueError, match=rf"huge\.npz.*do not fit its architecture.*{2 ** 36}.*refused before"):
        load_model(path)
