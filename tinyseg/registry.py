"""Name <-> object, for the families a model file names: losses, optimizers, schedules and regularizers.

Each family keeps a table of its classes by class name, and uses these three functions:

    get(identifier, names, base, what, module)   'adam' -> Adam() with Keras's defaults; an instance as is
    serialize(obj, classes, what)                Adam(0.01) -> {'class_name': 'Adam', 'config': {...}} (JSON-able)
    lookup(spec, classes, what)                  {'class_name': 'Adam', 'config': {...}} -> (Adam, {...})

`serialize` refuses an object whose class is not in the table, a user's subclass included: a saved model
names classes, and loading could not rebuild one it does not know. `lookup` hands back the class and a copy
of its config, so the family can rebuild what is nested in it first (an optimizer's schedule) before it
calls the class. Keras's own form of a spec, with extra 'module' and 'registered_name' keys, is read too:
those keys are not looked at.
"""


class Configurable:
    """Keras's config protocol: get_config() -> the constructor's arguments (JSON-able), and the class method
    from_config(config) -> a new object made from them, cls(**config). Layers, metrics and regularizers keep it;
    a class whose config is not its arguments overrides from_config."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def get(identifier, names, base, what, module):
    """identifier if it is an instance of base; a new names[identifier.lower()]() if it is a known name;
    else a ValueError listing the names. what: the family in the message ("loss", "optimizer"); module: where
    a user finds base ("tinyseg.losses")."""
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in names:
        return names[identifier.lower()]()
    raise ValueError(f"{what} must be one of {sorted(names)} or a {module}.{base.__name__}, "
                     f"got {identifier!r}")


def serialize(obj, classes, what):
    """{'class_name': ..., 'config': obj.get_config()} if obj's class is the one `classes` holds by its name."""
    cls = type(obj)
    if classes.get(cls.__name__) is not cls:
        raise ValueError(f"the {what} class {cls.__name__} is not one of tinyseg's {sorted(classes)}, so a saved "
                         "model could not rebuild it")
    return {"class_name": cls.__name__, "config": obj.get_config()}


def lookup(spec, classes, what):
    """(class, a copy of the config) for a spec that serialize() wrote; a ValueError for anything else."""
    cls = classes.get(spec.get("class_name")) if isinstance(spec, dict) else None
    if cls is None or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown {what} {spec!r} (known: {sorted(classes)})")
    return cls, dict(spec["config"])
