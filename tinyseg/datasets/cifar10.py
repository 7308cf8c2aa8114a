"""CIFAR-10 from a local copy of the official archive, read without trusting pickle.

    (x_train, y_train), (x_test, y_test) = load_cifar10("~/data/cifar-10-python.tar.gz")

    x_train uint8 (50000, 32, 32, 3)   y_train uint8 (50000, 1)      as keras.datasets.cifar10.load_data()
    x_test  uint8 (10000, 32, 32, 3)   y_test  uint8 (10000, 1)      class k is CLASS_NAMES[k]

tinyseg never downloads: get "CIFAR-10 python version" (cifar-10-python.tar.gz, about 163 MB) once from the
CIFAR-10 page of Alex Krizhevsky (University of Toronto), and pass its path, or the path of the folder
cifar-10-batches-py it extracts to, or of a folder holding either.

Why a special reader. Each batch file (data_batch_1..5, test_batch) is a Python pickle of a dict

    b'data':   uint8 numpy array (10000, 3072); a row is one image, all red values, then green, then blue,
               each 32 x 32 in row order, so row.reshape(3, 32, 32) is channels-first (CHW)
    b'labels': list of 10000 ints in 0..9

`pickle.load` on a file runs whatever functions the file names: a pickle can call os.system. So we unpickle
with `find_class` (the one door through which a pickle reaches a function or class) restricted to exactly the
globals a CIFAR batch needs to rebuild its numpy array, and refuse every other name before anything runs.
"""
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
_SIDE = 32
_ROW = 3 * _SIDE * _SIDE                        # 3072 values per image row
_EXPECTED = (f"expected {ARCHIVE_NAME}, or its folder {FOLDER_NAME} with {', '.join(TRAIN_FILES)} and "
             f"{TEST_FILE}. Download 'CIFAR-10 python version' from the CIFAR-10 page of Alex Krizhevsky "
             f"(University of Toronto) once, and pass its path; tinyseg does not download at run time")


def load_cifar10(path):
    """Load CIFAR-10 from `path`: the .tar.gz archive, the extracted cifar-10-batches-py folder, or a folder
    containing either. Nothing is extracted to disk.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : images uint8 (N, 32, 32, 3) channels-last, labels uint8 (N, 1).

    Raises
    ------
    FileNotFoundError naming the path and the expected files if the data is not there; ValueError if a file is
    not a CIFAR-10 batch (including any pickle that names a function outside the allowed few).
    """
    raw = _read_batch_files(Path(path).expanduser())
    train = [_parse_batch(raw[name], name) for name in TRAIN_FILES]
    x_test, y_test = _parse_batch(raw[TEST_FILE], TEST_FILE)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), (x_test, y_test)


def load_data(path=None):
    """Keras's `keras.datasets.cifar10.load_data()`, from a local copy only.

    Looks in `path` if given, else in the folder or archive named by the environment variable TINYSEG_DATA,
    else in Keras's own cache folder ~/.keras/datasets/ (where Keras keeps cifar-10-batches-py after its first
    download). Returns what load_cifar10 returns. Raises FileNotFoundError naming every place it looked.
    """
    if path is not None:
        return load_cifar10(path)
    places = []
    if os.environ.get("TINYSEG_DATA"):
        places.append(Path(os.environ["TINYSEG_DATA"]).expanduser())
    places.append(Path("~/.keras/datasets").expanduser())
    for place in places:
        for candidate in (place / FOLDER_NAME, place / ARCHIVE_NAME, place / "cifar-10-batches-py.tar.gz", place):
            if (candidate.is_dir() and all((candidate / f).is_file() for f in TRAIN_FILES + [TEST_FILE])) or \
                    (candidate.is_file() and candidate.name.endswith(".tar.gz")):
                return load_cifar10(candidate)
    raise FileNotFoundError("cifar10.load_data: no local copy of CIFAR-10 in the folder named by TINYSEG_DATA ("
                            + (os.environ.get("TINYSEG_DATA") or "not set") + ") nor in Keras's cache folder "
                            + str(places[-1]) + "; set TINYSEG_DATA to the folder or archive, or pass path=...; "
                            + _EXPECTED)


# --- finding the files --------------------------------------------------------------------------------------
def _read_batch_files(path):
    """{file name: bytes} for the six batch files, from a folder or a tar archive."""
    if path.is_dir():
        found = _read_folder(path)
        if found is not None:
            return found
        if not (path / ARCHIVE_NAME).is_file():
            raise FileNotFoundError(f"load_cifar10: no CIFAR-10 data in the folder {path}; {_EXPECTED}")
        path = path / ARCHIVE_NAME
    if not path.exists():
        raise FileNotFoundError(f"load_cifar10: {path} does not exist; {_EXPECTED}")
    if not tarfile.is_tarfile(path):
        raise ValueError(f"load_cifar10: {path} is not a tar archive; {_EXPECTED}")
    return _read_archive(path)


def _read_folder(path):
    """The batch files from the folder or its cifar-10-batches-py subfolder; None if neither holds them."""
    wanted = TRAIN_FILES + [TEST_FILE]
    for folder in (path, path / FOLDER_NAME):
        if (folder / TRAIN_FILES[0]).is_file():
            missing = [name for name in wanted if not (folder / name).is_file()]
            if missing:
                raise FileNotFoundError(f"load_cifar10: {folder} lacks {', '.join(missing)}; {_EXPECTED}")
            return {name: (folder / name).read_bytes() for name in wanted}
    return None


def _read_archive(path):
    """The batch files from a tar archive, read into memory."""
    wanted = TRAIN_FILES + [TEST_FILE]
    found = {}
    with tarfile.open(path, "r:*") as archive:
        # Read the members we need straight into memory: nothing is written to disk, so a crafted archive
        # cannot place files outside a folder (the "tar slip" problem of extractall).
        for member in archive:
            name = Path(member.name).name
            if member.isfile() and name in wanted and name not in found:
                found[name] = archive.extractfile(member).read()
    missing = [name for name in wanted if name not in found]
    if missing:
        raise FileNotFoundError(f"load_cifar10: the archive {path} lacks {', '.join(missing)}; {_EXPECTED}")
    return found


# --- the safe unpickler -------------------------------------------------------------------------------------
class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild a dict of bytes, ints, lists and numeric numpy arrays, and nothing else.

    Every global a pickle names (a function or class to call) goes through find_class; we answer only for the
    names in _ALLOWED and raise for all others, before the pickle can call anything.
    """

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names the global {module}.{name}, which this safe reader does not "
                                         f"allow") from None


_numpy_reconstruct = np.empty(0).__reduce__()[0]     # numpy's own array rebuilder, wherever numpy keeps it


def _reconstruct(cls, shape, typecode):
    """numpy's _reconstruct, for plain ndarrays only (no subclass)."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"it rebuilds an array of class {cls!r}, not numpy.ndarray")
    return _numpy_reconstruct(cls, shape, typecode)


def _numeric_dtype(spec, align=False, copy=True):
    """numpy.dtype, for numeric types only: an 'object' dtype would make numpy unpickle arbitrary objects.

    Always a fresh copy (copy=True), whatever the pickle asks: the pickle next calls __setstate__ on it, and
    that must never reach numpy's shared dtype objects.
    """
    dtype = np.dtype(spec, bool(align), True)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"it holds an array of dtype {dtype}, not a numeric dtype")
    return dtype


def _latin1_encode(text, encoding):
    """_codecs.encode restricted to latin-1: how Python 3 writes a bytes object into a protocol-2 pickle."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"it encodes text as {encoding!r}, not latin-1")
    return text.encode("latin-1")


_ALLOWED = {
    # The real files were written by Python 2 with numpy 1.x, which names numpy.core.multiarray; numpy 2 writes
    # numpy._core.multiarray. Both mean the same function.
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numeric_dtype,
    # Files re-saved with Python 3 at protocol 2 store each bytes object as _codecs.encode(text, 'latin1').
    ("_codecs", "encode"): _latin1_encode,
}


def _parse_batch(data, name):
    """Unpickle one batch safely, check it, and return (images uint8 (n, 32, 32, 3), labels uint8 (n, 1))."""
    try:
        # encoding='bytes': Python 2 strings (the dict keys, the array bytes) load as bytes, as written.
        batch = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:          # any failure at all means: not a file we can trust as CIFAR-10
        raise ValueError(f"load_cifar10: {name} is not a CIFAR-10 batch file: {error}") from error
    if not isinstance(batch, dict):
        raise ValueError(f"load_cifar10: {name} is not a CIFAR-10 batch file: it holds a {type(batch).__name__}, "
                         f"not a dict")
    images = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != _ROW:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"load_cifar10: {name} is not a CIFAR-10 batch file: its 'data' must be a uint8 array "
                         f"(N, {_ROW}), got {got}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(images) \
            or not all(isinstance(v, (int, np.integer)) and 0 <= v < len(CLASS_NAMES) for v in labels):
        raise ValueError(f"load_cifar10: {name} is not a CIFAR-10 batch file: its 'labels' must be {len(images)} "
                         f"integers in 0..{len(CLASS_NAMES) - 1}")
    # Row layout (3, 32, 32) channels-first -> tinyseg's channels-last (32, 32, 3).
    x = images.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    y = np.asarray(labels, dtype=np.uint8).reshape(-1, 1)
    return np.ascontiguousarray(x), y
