"""The argument checks of tinyseg/validation.py and the name <-> object table of tinyseg/registry.py: what each
accepts (and returns, in which type), what it refuses, and the message that names the argument."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyseg import registry
from tinyseg.validation import ArgumentError, flag, integer, is_real_number, one_of, positive_int, real_number


# --- real_number -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [2, 2.0, np.float32(2.0), np.int64(2), np.float64(2.0)])
def test_real_number_accepts_python_and_numpy_numbers_as_a_float(value):
    result = real_number(value, "x")
    assert result == 2.0 and type(result) is float


@pytest.mark.parametrize("value", [True, np.True_, "1", 1j, None, [1.0], np.array([1.0])])
def test_real_number_refuses_what_is_not_a_real_number(value):
    with pytest.raises(ArgumentError, match=r"^x must be a real number, got "):
        real_number(value, "x")
    assert not is_real_number(value)


@pytest.mark.parametrize("value, kwargs, message", [
    (0.0, dict(low=0, low_open=True), "x must be > 0, got 0.0"),
    (0, dict(low=0, low_open=True), "x must be > 0, got 0.0"),                 # shown as the float it became
    (-1e-300, dict(low=0), "x must be >= 0, got -1e-300"),
    (1.0, dict(low=0, high=1, high_open=True), r"x must be in \[0, 1\), got 1.0"),
    (1.5, dict(low=0, high=1), r"x must be in \[0, 1\], got 1.5"),
    (0.0, dict(low=0, high=1, low_open=True), r"x must be in \(0, 1\], got 0.0"),
    (2.0, dict(high=1), "x must be <= 1, got 2.0"),
    (1.0, dict(high=1, high_open=True), "x must be < 1, got 1.0"),
    (math.nan, dict(low=0), "x must be >= 0, got nan"),                        # NaN is in no interval
    (math.nan, dict(), "x must be finite, got nan"),
    (math.inf, dict(low=0), "x must be finite, got inf"),
    (-math.inf, dict(), "x must be finite, got -inf"),
    (-1.0, dict(low=0, expected="a finite weight >= 0"), "x must be a finite weight >= 0, got -1.0"),
    (math.inf, dict(low=0, expected="a finite weight >= 0"), "x must be a finite weight >= 0, got inf"),
    ("a", dict(low=0, expected="a finite weight >= 0"), "x must be a real number, got 'a'"),
])
def test_real_number_refuses_out_of_range_naming_the_rule(value, kwargs, message):
    with pytest.raises(ArgumentError, match=f"^{message}$"):
        real_number(value, "x", **kwargs)


@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(-10, 10), st.floats(0, 10),
       st.booleans(), st.booleans())
def test_real_number_accepts_exactly_the_interval(value, low, width, low_open, high_open):
    high = low + width
    inside = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if inside:
        assert real_number(value, "x", low, high, low_open=low_open, high_open=high_open) == value
    else:
        with pytest.raises(ArgumentError):
            real_number(value, "x", low, high, low_open=low_open, high_open=high_open)


def test_argument_error_is_both_a_type_error_and_a_value_error():
    """Code that caught the TypeError or the ValueError a module raised before the checks were shared still
    catches the one error they raise now."""
    for catch in (TypeError, ValueError):
        with pytest.raises(catch):
            real_number("1", "x")
        with pytest.raises(catch):
            real_number(-1.0, "x", low=0)


# --- integers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3)])
def test_integer_accepts_python_and_numpy_integers_as_an_int(value):
    assert integer(value, "n") == 3 and type(integer(value, "n")) is int
    assert positive_int(value, "n") == 3 and type(positive_int(value, "n")) is int


@pytest.mark.parametrize("value, low, message", [
    (3.0, None, r"n must be an integer, got 3.0 \(float\)"),
    (True, None, r"n must be an integer, got True \(bool\)"),
    (np.True_, None, r"n must be an integer, got (np\.)?True_? \(bool_?\)"),
    ("3", None, r"n must be an integer, got '3' \(str\)"),
    (-1, 0, "n must be an integer >= 0, got -1"),
])
def test_integer_refuses_naming_the_argument(value, low, message):
    with pytest.raises(ArgumentError, match=f"^{message}$"):
        integer(value, "n", low=low)


@pytest.mark.parametrize("value", [0, -2, 2.0, True, None])
def test_positive_int_refuses_what_is_not_an_integer_from_1(value):
    with pytest.raises(ArgumentError, match=f"^filters must be a positive integer, got {value!r}$"):
        positive_int(value, "filters")


# --- flags and choices -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (np.True_, True), (np.False_, False)])
def test_flag_accepts_true_and_false_as_a_bool(value, expected):
    assert flag(value, "f") is expected


@pytest.mark.parametrize("value", [0, 1, "yes", None, 1.0])
def test_flag_refuses_what_is_not_true_or_false(value):
    with pytest.raises(ArgumentError, match=f"^f must be True or False, got {value!r}$"):
        flag(value, "f")


def test_flag_with_none_allowed():
    assert flag(None, "f", allow_none=True) is None
    with pytest.raises(ArgumentError, match="^f must be True, False or None, got 'no'$"):
        flag("no", "f", allow_none=True)


def test_one_of_lists_the_choices():
    assert one_of("torch", "style", ("keras", "torch")) == "torch"
    with pytest.raises(ArgumentError, match="^style must be 'keras' or 'torch', got 'tf'$"):
        one_of("tf", "style", ("keras", "torch"))
    with pytest.raises(ArgumentError, match="^mode must be 'a', 'b' or 'c', got 1$"):
        one_of(1, "mode", ("a", "b", "c"))


# --- registry --------------------------------------------------------------------------------------------------
class Shape:
    def __init__(self, sides=3):
        self.sides = sides

    def get_config(self):
        return {"sides": self.sides}


class Square(Shape):
    def __init__(self):
        super().__init__(4)


NAMES = {"shape": Shape, "square": Square}
CLASSES = {"Shape": Shape, "Square": Square}


def test_registry_get_makes_a_named_one_and_keeps_an_instance():
    made = registry.get("Shape", NAMES, Shape, "shape", "geometry")
    assert type(made) is Shape and made.sides == 3
    square = Square()
    assert registry.get(square, NAMES, Shape, "shape", "geometry") is square
    with pytest.raises(ValueError, match=r"^shape must be one of \['shape', 'square'\] or a geometry.Shape, got 'x'"):
        registry.get("x", NAMES, Shape, "shape", "geometry")


def test_registry_serialize_and_lookup_round_trip():
    spec = registry.serialize(Shape(5), CLASSES, "shape")
    assert spec == {"class_name": "Shape", "config": {"sides": 5}}
    cls, config = registry.lookup(spec, CLASSES, "shape")
    assert cls is Shape and config == {"sides": 5}
    config["sides"] = 6                                            # a copy: the spec is not changed
    assert spec["config"] == {"sides": 5}
    keras_form = {"module": "somewhere", "class_name": "Square", "config": {}, "registered_name": None}
    assert registry.lookup(keras_form, CLASSES, "shape") == (Square, {})


def test_registry_refuses_a_class_it_could_not_rebuild():
    class Triangle(Shape):
        pass

    with pytest.raises(ValueError, match=r"the shape class Triangle is not one of tinyseg's \['Shape', 'Square'\]"):
        registry.serialize(Triangle(), CLASSES, "shape")
    for spec in ({"class_name": "Triangle", "config": {}}, {"class_name": "Shape"}, "Shape", None):
        with pytest.raises(ValueError, match="unknown shape"):
            registry.lookup(spec, CLASSES, "shape")
