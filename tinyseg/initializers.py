"""Weight initialisers, with Keras's names, classes and formulas.

    GlorotUniform / 'glorot_uniform':  U(-limit, limit),  limit = sqrt(6 / (fan_in + fan_out))   (Keras's default)
    GlorotNormal:   N(0, 2 / (fan_in + fan_out)) truncated at 2 standard deviations
    HeNormal:       N(0, 2 / fan_in) truncated;      HeUniform:    limit = sqrt(6 / fan_in)
    LecunNormal:    N(0, 1 / fan_in) truncated;      LecunUniform: limit = sqrt(3 / fan_in)
    RandomNormal(mean, stddev), TruncatedNormal(mean, stddev), RandomUniform(minval, maxval), Constant(value),
    Zeros, Ones                                     (a seed= makes the random ones give the same weights each call)
    Bilinear / 'bilinear':  K[i, j, a, a] = (1 - |i - c| / f) (1 - |j - c| / f), 0 off the channel diagonal
                    (not Keras's: FCN's and d2l's start for an upsampling Conv2DTranspose, see the class)

For a kernel of shape (KH, KW, C_in, C_out): fan_in = KH*KW*C_in, fan_out = KH*KW*C_out; for a dense kernel
(D_in, D_out): fan_in = D_in, fan_out = D_out.

A layer's build asks for each weight as Keras's do, `self.add_weight(name, shape, initializer)`
(layers/base.py), which calls init(shape, dtype, where="conv2d_1: kernel_initializer "). Every initializer
tinyseg hands a layer (its own classes, and a function of yours, or a Keras-style subclass overriding
__call__, through `get`) is checked, the error beginning with that `where`:

- what it returns must be real numbers of the asked shape, finite once cast to the layer's dtype; else the
  error names the layer, the argument (kernel_initializer, ...) and the function, at build, instead of NaN
  predictions later and a fit that blames divergence;
- inside `size_ceiling(n)` the initializers together may create at most n numbers, checked before each
  array is allocated: load_model sets n to what its file stores, so a small file whose config declares a
  huge layer is refused before that layer's memory is asked for.
"""
import contextlib
import contextvars
import functools

import numpy as np

from . import backend, registry, validation


class CeilingExceeded(ValueError):
    """An initializer was asked for more numbers than the size_ceiling around it allows."""


_ceiling = contextvars.ContextVar("initializer_ceiling", default=None)     # [numbers still allowed] or None


@contextlib.contextmanager
def size_ceiling(numbers):
    """Within the block, the initializers together create at most `numbers` numbers (CeilingExceeded else)."""
    token = _ceiling.set([int(numbers)])
    try:
        yield
    finally:
        _ceiling.reset(token)


def checked(fn):
    """fn(shape, dtype) with its result checked and cast to dtype (module docstring); a wrapper already is (as
    is every Initializer instance)."""
    overridden = isinstance(fn, Initializer) and type(fn).__call__ is not Initializer.__call__   # Keras-style
    if getattr(fn, "checks_its_weights", False) and not overridden:
        return fn

    @functools.wraps(fn)
    def initializer(shape, dtype, where=""):
        return _run_checked(fn, _name(fn), shape, dtype, where)

    initializer.checks_its_weights = True
    return initializer


def _run_checked(fn, name, shape, dtype, where):
    """fn(shape, dtype), checked and cast. name: the initializer's, for the messages ('HeNormal(seed=1)',
    'my_init'); where: who asked, 'conv2d_1: kernel_initializer ' (Layer.add_weight passes it), or ''."""
    shape = tuple(int(d) for d in shape)
    _spend(int(np.prod(shape, dtype=object)), shape, where)        # before anything is allocated
    w = np.asarray(fn(shape, dtype))
    if w.dtype.kind not in "fiu" or w.shape != shape:
        raise ValueError(f"{where}{name} must return real numbers of shape {shape}, got "
                         f"{w.shape} {w.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.array(w, dtype=dtype)          # a copy: two layers never share an array the function kept
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{where}{name} returned NaN or inf (in {np.dtype(dtype).name}) "
                         f"for a weight of shape {shape}; an initial weight must be a finite number")
    return w


def _spend(size, shape, where):
    """Take `size` numbers from the size_ceiling around this call, if there is one."""
    left = _ceiling.get()
    if left is None:
        return
    if size > left[0]:
        raise CeilingExceeded(f"{where or 'an initializer '}asks for a weight of shape {shape} "
                              f"({size} numbers), more than the {left[0]} left under the ceiling")
    left[0] -= size


def _name(fn):
    return getattr(fn, "__name__", None) or repr(fn)


def fans(shape):
    """(fan_in, fan_out): a kernel (KH, KW, C_in, C_out) -> (KH*KW*C_in, KH*KW*C_out); (D_in, D_out) as is."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def truncated_normal(rng, shape):
    """N(0, 1) draws, each beyond 2 drawn again until it is within [-2, 2] (its std is then 0.8796...)."""
    w = rng.standard_normal(size=shape)
    while np.any(np.abs(w) > 2):
        bad = np.abs(w) > 2
        w[bad] = rng.standard_normal(size=int(bad.sum()))
    return w


TRUNCATED_STD = 0.87962566103423978      # std of N(0, 1) truncated at +-2: dividing by it restores std 1


# --- Keras's initializer classes -------------------------------------------------------------------------
class Initializer:
    """Keras's initializer protocol: init(shape, dtype=None) -> an array; get_config() / from_config(config).

    Every call is checked as `checked` checks a function (module docstring). A seeded initializer draws from
    numpy.random.default_rng(seed) afresh at every call, so it gives the same weights every time (as Keras 3's
    do); with seed=None it draws from tinyseg.backend.rng(), which tinyseg.set_random_seed seeds."""

    checks_its_weights = True

    def __init__(self, seed=None):
        self.seed = None if seed is None else validation.integer(
            seed, f"{type(self).__name__}: seed", low=0, expected="None or a non-negative integer")

    def rng(self):
        return backend.rng() if self.seed is None else np.random.default_rng(self.seed)

    def __call__(self, shape, dtype=None, where=""):
        return _run_checked(self.sample, repr(self), shape, backend.floatx() if dtype is None else dtype, where)

    def sample(self, shape, dtype):
        raise NotImplementedError

    def get_config(self):
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class _VarianceScaling(Initializer):
    """w ~ N(0, scale / n) truncated at 2 std (normal) or U(-sqrt(3 scale / n), +sqrt(3 scale / n)) (uniform),
    n = fan_in, or (fan_in + fan_out) / 2 for Glorot: the variance that keeps activations' scale layer to layer."""

    scale, fan, distribution = 1.0, "fan_in", "normal"

    def sample(self, shape, dtype):
        fan_in, fan_out = fans(shape)
        n = fan_in if self.fan == "fan_in" else (fan_in + fan_out) / 2
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * self.scale / n)
            return self.rng().uniform(-limit, limit, size=shape).astype(dtype)
        return (truncated_normal(self.rng(), shape) * np.sqrt(self.scale / n) / TRUNCATED_STD).astype(dtype)


class GlorotUniform(_VarianceScaling):
    """U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)): Keras's default kernel initializer."""
    fan, distribution = "fan_avg", "uniform"


class GlorotNormal(_VarianceScaling):
    """N(0, 2 / (fan_in + fan_out)) truncated at 2 standard deviations."""
    fan = "fan_avg"


class HeNormal(_VarianceScaling):
    """N(0, 2 / fan_in) truncated at 2 standard deviations: for layers followed by a ReLU."""
    scale = 2.0


class HeUniform(_VarianceScaling):
    """U(-limit, limit), limit = sqrt(6 / fan_in)."""
    scale, distribution = 2.0, "uniform"


class LecunNormal(_VarianceScaling):
    """N(0, 1 / fan_in) truncated at 2 standard deviations."""


class LecunUniform(_VarianceScaling):
    """U(-limit, limit), limit = sqrt(3 / fan_in)."""
    distribution = "uniform"


class RandomNormal(Initializer):
    """N(mean, stddev^2)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean = validation.real_number(mean, "RandomNormal: mean")
        self.stddev = validation.real_number(stddev, "RandomNormal: stddev", low=0, low_open=True)

    def sample(self, shape, dtype):
        return (self.mean + self.stddev * self.rng().standard_normal(size=shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """N(mean, stddev^2), every draw beyond 2 stddev from the mean drawn again."""

    def sample(self, shape, dtype):
        return (self.mean + self.stddev * truncated_normal(self.rng(), shape)).astype(dtype)


class RandomUniform(Initializer):
    """U(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval = validation.real_number(minval, "RandomUniform: minval")
        self.maxval = validation.real_number(maxval, "RandomUniform: maxval")
        if self.maxval <= self.minval:
            raise validation.ArgumentError(f"RandomUniform: maxval must be > minval, got minval={self.minval!r}, "
                                           f"maxval={self.maxval!r}")

    def sample(self, shape, dtype):
        return self.rng().uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class Constant(Initializer):
    """Every weight equal to `value`."""

    def __init__(self, value=0.0):
        super().__init__()
        self.value = validation.real_number(value, "Constant: value")

    def sample(self, shape, dtype):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """Every weight 0."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Every weight 1."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class Bilinear(Initializer):
    """The kernel of bilinear interpolation, so that a Conv2DTranspose with kernel k = 2s (or 2s - 1) and
    stride s starts as bilinear upsampling by s (FCN, Long et al. 2015; d2l's FCN chapter), and learns from there.

    For a kernel of shape (KH, KW, A, B), with f = ceil(KH / 2) and c = f - 1 (KH odd) or f - 1/2 (KH even) along
    rows, and the same along columns with KW:
        K[i, j, a, b] = (1 - |i - c_h| / f_h) * (1 - |j - c_w| / f_w)   if a == b, else 0
    Channel a feeds channel a only: each channel is upsampled on its own. A == B is asked for, since the
    identity between channels is what makes it "upsampling"."""

    def __init__(self):
        super().__init__()

    def sample(self, shape, dtype):
        if len(shape) != 4 or shape[2] != shape[3]:
            raise validation.ArgumentError(f"Bilinear: expected a kernel shape (KH, KW, C, C) with as many filters "
                                           f"as input channels, got {tuple(shape)}")
        rows, cols = (bilinear_filter(n) for n in shape[:2])
        kernel = np.zeros(shape, dtype=np.float64)
        channels = np.arange(shape[2])
        kernel[:, :, channels, channels] = np.outer(rows, cols)[:, :, None]
        return kernel.astype(dtype)

    def get_config(self):
        return {}


def bilinear_filter(k):
    """The 1-D tent of width k: 1 - |i - c| / f for i = 0..k-1, f = ceil(k / 2), c = f - 1 (k odd) or f - 1/2."""
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    return 1 - np.abs(np.arange(k) - c) / f


CLASSES = {cls.__name__: cls for cls in (GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform,
                                          RandomNormal, TruncatedNormal, RandomUniform, Constant, Zeros, Ones,
                                          Bilinear)}

# the names strings use (Keras's), each one shared instance without a seed: layers get it by name
glorot_uniform, he_normal, zeros, ones = GlorotUniform(), HeNormal(), Zeros(), Ones()
INITIALIZERS = {"glorot_uniform": glorot_uniform, "glorot_normal": GlorotNormal(), "he_normal": he_normal,
                "he_uniform": HeUniform(), "lecun_normal": LecunNormal(), "lecun_uniform": LecunUniform(),
                "random_normal": RandomNormal(), "truncated_normal": TruncatedNormal(),
                "random_uniform": RandomUniform(), "zeros": zeros, "ones": ones, "bilinear": Bilinear()}


def get(identifier):
    """An initializer: by name ('he_normal' or 'HeNormal'), an Initializer as it is, Keras's serialized form
    {'class_name': 'HeNormal', 'config': {'seed': 1}}, or a function of yours (shape, dtype), wrapped by
    `checked`."""
    if isinstance(identifier, dict):
        cls, config = registry.lookup(identifier, CLASSES, "initializer")
        return cls.from_config(config)
    if callable(identifier):
        return checked(identifier)
    if isinstance(identifier, str) and identifier in CLASSES:
        return INITIALIZERS.get(_snake_name(identifier)) or CLASSES[identifier]()
    if identifier not in INITIALIZERS:
        raise ValueError(f"initializer must be one of {sorted(INITIALIZERS)} (or a class name of "
                         f"tinyseg.initializers, an Initializer, or a function), got {identifier!r}")
    return INITIALIZERS[identifier]


def _snake_name(class_name):
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(class_name))


def serialize(initializer):
    """{'class_name': ..., 'config': ...} of an Initializer (a function has no such form)."""
    return registry.serialize(initializer, CLASSES, "initializer")
