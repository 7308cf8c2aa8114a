from .shapes import load_shapes
