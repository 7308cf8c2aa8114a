"""Checks of the arguments a user passes: one place that says what a number, a count or a flag must be.

Each check returns the value in a plain Python type (float, int, bool) when it is acceptable, and otherwise
raises `ArgumentError` with a message that names the argument, says what was expected and shows what was
given:

    real_number(0.0, "learning_rate", low=0, low_open=True)   ->  learning_rate must be > 0, got 0.0
    positive_int(3.0, "filters")                              ->  filters must be a positive integer, got 3.0
    flag("yes", "nesterov")                                   ->  nesterov must be True or False, got 'yes'

What counts as what (the same everywhere in tinyseg):
- a real number is a Python or NumPy int or float, not a bool (True is an int to Python, but
  `SGD(learning_rate=True)` is a mistake), not a string and not a complex number;
- an integer is a Python or NumPy integer, not a bool and not a float that happens to be whole (3.0);
- a flag is True or False (Python's or NumPy's), not 0, 1 or 'yes'.

`argument` is the name the error shows; a caller with an owner prefixes it ("conv2d: filters",
"CosineDecay: decay_steps"), so the message points at the call that was wrong.
"""
import math
import numbers

import numpy as np


class ArgumentError(TypeError, ValueError):
    """A bad argument, of the wrong type or out of range.

    It is both a TypeError and a ValueError: before these checks were gathered here, tinyseg's modules raised
    one or the other for the same kind of mistake (a string where a number belongs was a TypeError in the
    optimizers and a ValueError in the regularizers), and code written against either keeps catching it.
    """


def is_real_number(value):
    """True for a real number as this module means it (an int or float, Python's or NumPy's, not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _interval(low, high, low_open, high_open):
    """The allowed range in words: '> 0', '>= 0', '<= 1', 'in [0, 1)'."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


def _inside(value, low, high, low_open, high_open):
    """value within the bounds (NaN is within none: every comparison with it is False)."""
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    return above and below


def real_number(value, argument, low=None, high=None, *, low_open=False, high_open=False, expected=None):
    """value as a float if it is a finite real number within [low, high] (an end is left out when its `_open`
    flag is set, and a bound of None is no bound); else ArgumentError naming `argument`.

    The messages: "{argument} must be a real number" (wrong type); "must be > 0" (or the interval; NaN fails
    it); "must be finite" (an infinity within the bounds). expected: the rule in the caller's words for the
    last two ("a finite number > 0 (or None for no clipping)").
    """
    if not is_real_number(value):
        raise ArgumentError(f"{argument} must be a real number, got {value!r}")
    number = float(value)           # shown as the float it became: "got 0.0" for 0
    if (low is not None or high is not None) and not _inside(number, low, high, low_open, high_open):
        raise ArgumentError(f"{argument} must be {expected or _interval(low, high, low_open, high_open)}, "
                            f"got {number!r}")
    if not math.isfinite(number):
        raise ArgumentError(f"{argument} must be {expected or 'finite'}, got {number!r}")
    return number


def integer(value, argument, low=None, expected=None):
    """value as an int if it is an integer (Python's or NumPy's, not a bool or a float) >= low (None: any);
    else ArgumentError naming `argument`: "must be an integer, got 3.0 (float)", "must be an integer >= 1".
    expected: the rule in the caller's words, used for every failure instead."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ArgumentError(f"{argument} must be {expected or 'an integer'}, got {value!r}"
                            + ("" if expected else f" ({type(value).__name__})"))
    if low is not None and value < low:
        raise ArgumentError(f"{argument} must be {expected or f'an integer >= {low}'}, got {value!r}")
    return int(value)


def positive_int(value, argument):
    """value as an int if it is an integer >= 1 (a size, a count of filters or classes); else ArgumentError."""
    return integer(value, argument, low=1, expected="a positive integer")


def flag(value, argument, allow_none=False):
    """value as a bool if it is True or False (or None, when allow_none); else ArgumentError naming it."""
    if allow_none and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{argument} must be True{', False or None' if allow_none else ' or False'}, "
                            f"got {value!r}")
    return bool(value)


def one_of(value, argument, options):
    """value if it is one of `options` (strings); else ArgumentError listing them: "must be 'a' or 'b'"."""
    if not isinstance(value, str) or value not in options:
        names = [repr(o) for o in options]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise ArgumentError(f"{argument} must be {listed}, got {value!r}")
    return value


__all__ = ["ArgumentError", "flag", "integer", "is_real_number", "one_of", "positive_int", "real_number"]
