"""A model in a file's architecture entry, and back: what save writes and load_model rebuilds.

    serialize_model(model)     -> {'class_name', 'config'} (+ a subclass's 'registered_name' and 'build_config',
                                  + 'frozen_layers' and 'trainable' when something is frozen)
    deserialize_model(spec)    -> a new model of that class, built, its frozen layers frozen again

The config is the model's own get_config() (a functional model's graph of layers, a UNet's arguments); the
weights are not in it (tinyseg/saving.py stores them beside it).
"""
from . import subclassing
from .model import MODEL_CLASSES, Model


def serialize_model(model):
    """{'class_name', 'config'} (and a subclass's 'registered_name' and 'build_config'): what load_model rebuilds;
    and 'frozen_layers': the positions in model.layers of the layers with trainable=False, which a model whose
    config does not list its layers (UNet) would otherwise forget."""
    cls = type(model)
    registered = cls.__dict__.get("_registered_name", cls.__name__)
    if MODEL_CLASSES.get(registered) is not cls:
        raise ValueError(f"save: the model class {cls.__name__} is not registered, so load_model could not "
                         "rebuild it; decorate it with @tinyseg.saving.register_keras_serializable(package=...)")
    spec = {"class_name": cls.__name__, "config": model.get_config()}
    if subclassing.is_subclassed(model):
        if model._graph is None:
            raise ValueError(f"save: the model '{model.name}' is not built yet (no weights); run it on data or "
                             "call model.build(input_shape) first")
        spec.update(registered_name=registered, build_config=subclassing.build_config(model))
    frozen = [i for i, layer in enumerate(model.layers) if not layer.trainable]
    if frozen:
        spec["frozen_layers"] = frozen
    if not model.trainable:
        spec["trainable"] = False
    return spec


def deserialize_model(spec, custom_objects=None):
    """The model serialize_model described: its class found by registered name (or in custom_objects), its
    frozen layers frozen again."""
    name = spec.get("registered_name", spec.get("class_name")) if isinstance(spec, dict) else None
    cls = MODEL_CLASSES.get(name) or (custom_objects or {}).get(spec.get("class_name") if name else None)
    if not (isinstance(cls, type) and issubclass(cls, Model)) or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown model class {name if isinstance(spec, dict) else spec!r} in the model file "
                         f"(known: {sorted(MODEL_CLASSES)}; a class of your own must be registered with "
                         "tinyseg.saving.register_keras_serializable, or given in custom_objects)")
    model = cls.from_config(dict(spec["config"]))
    built = spec.get("build_config")
    if isinstance(built, dict) and subclassing.is_subclassed(cls):
        shapes = [[None] + list(s) for s in built["input_shapes"]]
        model.build(shapes if built.get("list_inputs") else shapes[0])
    frozen, n = spec.get("frozen_layers", []), len(model.layers)
    if not isinstance(frozen, list) or not all(type(i) is int and 0 <= i < n for i in frozen):
        raise ValueError(f"frozen_layers must be a list of layer positions in [0, {n}), got {frozen!r}")
    for i in frozen:
        model.layers[i].trainable = False
    if spec.get("trainable", True) is not True:
        model.trainable = spec["trainable"]                # checked by the setter: True or False
    return model
