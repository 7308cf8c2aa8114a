"""The checks every architecture builder (fcn.py, segnet.py, deeplab.py, unet.py) makes of its arguments.

A builder is called as `builder(input_shape, num_classes, **knobs)`; these turn its arguments into plain ints
or raise an ArgumentError naming the builder and the argument, with what was expected (tinyseg.validation).
"""
from ..validation import ArgumentError, positive_int


def image_shape(builder, input_shape, multiple=1, minimum=1, why=""):
    """(H, W, C) as ints, where H and W are multiples of `multiple` and at least `minimum`; else ArgumentError
    naming input_shape, with `why` (the builder's reason for the rule) and the nearest valid sizes."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ArgumentError(f"{builder}: input_shape must be (height, width, channels), got {input_shape!r}")
    h, w, c = (positive_int(d, f"{builder}: input_shape {tuple(input_shape)}: each size") for d in input_shape)
    for axis, size in (("height", h), ("width", w)):
        if size % multiple or size < minimum:
            rules = ([f"a multiple of {multiple}"] if multiple > 1 else []) + \
                ([f"at least {minimum}"] if minimum > 1 else [])
            below = max(size - size % multiple, minimum + (-minimum) % multiple)
            valid = " and ".join(map(str, sorted({below, below + multiple} if below < size else {below})))
            raise ArgumentError(f"{builder}: input_shape {tuple(input_shape)}: the {axis} must be "
                                f"{' and '.join(rules)}{' (' + why + ')' if why else ''}, got {size}; the "
                                f"nearest valid {axis}{'s are' if ' and ' in valid else ' is'} {valid}")
    return h, w, c


def class_count(builder, num_classes):
    """num_classes as an int >= 1, or ArgumentError naming it."""
    return positive_int(num_classes, f"{builder}: num_classes")


def positive_ints(builder, argument, values):
    """A tuple of positive ints (dilation rates, convolutions per block), or ArgumentError naming it."""
    if not isinstance(values, (tuple, list)) or not values:
        raise ArgumentError(f"{builder}: {argument} must be a non-empty list of positive integers, got {values!r}")
    return tuple(positive_int(v, f"{builder}: {argument}: each value") for v in values)


def load_keras(keras):
    """The Keras-like module to build with: tinyseg unless another (Keras itself, in the parity tests) is given."""
    if keras is None:
        import tinyseg as keras
    return keras
