"""Typed record classes without the cost of `import dataclasses`.

The store's records (machine.model) and the driver contract (machine.driver) are loaded by
`machine env` in every shell prompt. `dataclasses` imports `inspect` (with ast, dis and
tokenize) and compiles an __init__, __repr__ and __eq__ for every class: about a fifth of
a bare interpreter's start-up again. A `Record` subclass gets the same behaviour from
three generic methods defined once here, reading the field table its class builds when
it is declared:

    class Point(Record):
        x: int = 0
        tags: list = field(default_factory=list)

    class Key(Record, frozen=True):   # immutable, hashable
        name: str

Fields come from each class's own annotations (ClassVar ones excepted), after those of
its bases, a redeclared field keeping its place, as in dataclasses. A subclass may still
carry `@dataclasses.dataclass` (driver plugins written against the dataclass contract do):
the class already has its __init__, __repr__ and __eq__, which dataclass leaves alone.
"""
from __future__ import annotations

__all__ = ["MISSING", "Field", "FrozenInstanceError", "Record", "field", "fields", "replace"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "metadata", "repr", "compare")

    def __init__(self, default=MISSING, default_factory=MISSING, metadata=None, repr=True, compare=True):
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.metadata = dict(metadata or {})
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"


def field(*, default=MISSING, default_factory=MISSING, metadata=None, repr: bool = True,
          compare: bool = True):
    """A field with options, as dataclasses.field (the subset records use)."""
    return Field(default, default_factory, metadata, repr, compare)


def fields(obj) -> tuple:
    """The fields of a record class or instance, in order."""
    try:
        return obj.__record_fields__
    except AttributeError:
        raise TypeError(f"{obj!r} is not a record") from None


def replace(obj, **changes):
    """A copy of `obj` with some fields changed."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    values.update(changes)
    return type(obj)(**values)


def _is_classvar(annotation) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _as_field(name: str, value) -> Field:
    if isinstance(value, Field):
        f = value
    elif type(value).__name__ == "Field" and hasattr(value, "default_factory"):
        # a dataclasses.field(...) in a plugin's record: take what it says
        def ours(v):
            return MISSING if type(v).__name__ == "_MISSING_TYPE" else v

        f = Field(ours(value.default), ours(value.default_factory), value.metadata, value.repr, value.compare)
    else:
        if isinstance(value, (list, dict, set)):
            raise ValueError(f"mutable default {type(value).__name__} for field {name}: use default_factory")
        f = Field(default=value)
    f.name = name
    return f


class Record:
    """Base of typed records: fields from annotations, generic __init__/__repr__/__eq__."""

    __record_fields__: tuple = ()
    __record_frozen__: bool = False

    def __init_subclass__(cls, frozen: bool | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        table: dict[str, Field] = {}
        for base in reversed(cls.__mro__[1:]):
            for f in base.__dict__.get("__record_fields__", ()):
                table[f.name] = f
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if _is_classvar(annotation):
                continue
            f = _as_field(name, cls.__dict__.get(name, MISSING))
            table[name] = f
            if f.default is not MISSING:
                setattr(cls, name, f.default)
            elif name in cls.__dict__ and f.default_factory is MISSING:
                delattr(cls, name)
            # a default_factory field keeps its Field as the class attribute: a @dataclass applied
            # on top then sees a default and does not complain about the order of fields
        cls.__record_fields__ = tuple(table.values())
        inherited_frozen = any(b.__dict__.get("__record_frozen__") for b in cls.__mro__[1:])
        cls.__record_frozen__ = bool(frozen) if frozen is not None else inherited_frozen
        # the methods are set on each class, so a @dataclass on top keeps ours
        for name in ("__init__", "__repr__", "__eq__"):
            if name not in cls.__dict__:
                setattr(cls, name, getattr(Record, "_record" + name))
        if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
            cls.__hash__ = Record._record_hash if cls.__record_frozen__ else None
        if cls.__record_frozen__:
            cls.__setattr__ = Record._frozen_setattr
            cls.__delattr__ = Record._frozen_delattr

    def _record__init__(self, *args, **kwargs):
        table = type(self).__record_fields__
        if len(args) > len(table):
            raise TypeError(f"{type(self).__name__}() takes {len(table)} positional arguments "
                            f"but {len(args)} were given")
        put = object.__setattr__
        for i, f in enumerate(table):
            if i < len(args):
                if f.name in kwargs:
                    raise TypeError(f"{type(self).__name__}() got multiple values for argument {f.name!r}")
                value = args[i]
            elif f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{type(self).__name__}() missing required argument: {f.name!r}")
            put(self, f.name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}")
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def _record__repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in type(self).__record_fields__ if f.repr)
        return f"{type(self).__qualname__}({shown})"

    def _compared(self) -> tuple:
        return tuple(getattr(self, f.name) for f in type(self).__record_fields__ if f.compare)

    def _record__eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return Record._compared(self) == Record._compared(other)

    def _record_hash(self) -> int:
        return hash(Record._compared(self))

    def _frozen_setattr(self, name, value):
        if any(f.name == name for f in type(self).__record_fields__):
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def _frozen_delattr(self, name):
        if any(f.name == name for f in type(self).__record_fields__):
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)
