"""machine.record.Record: the dataclass behaviour the records and the driver contract rely on."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from machine.record import FrozenInstanceError, Record, field, fields, replace


class Base(Record):
    a: int
    b: str = "x"
    tags: list = field(default_factory=list)
    hidden: str = field(default="s3cret", repr=False, compare=False)
    kind: ClassVar[str] = "base"


class Child(Base):
    b: str = "y"          # redeclared: keeps its place, takes the new default
    c: float = 1.5


class Key(Record, frozen=True):
    name: str
    port: int = 0


def test_fields_in_declaration_order_bases_first():
    assert [f.name for f in fields(Base)] == ["a", "b", "tags", "hidden"]
    assert [f.name for f in fields(Child(1))] == ["a", "b", "tags", "hidden", "c"]
    assert Child(1).b == "y" and Base(1).b == "x" and Child.kind == "base"


def test_init_positional_keywords_defaults_and_factories():
    one, two = Base(1), Base(2, "z", tags=["t"])
    assert (one.a, one.b, one.tags, two.b, two.tags) == (1, "x", [], "z", ["t"])
    one.tags.append("mine")
    assert Base(3).tags == []  # a fresh list each time
    with pytest.raises(TypeError, match="missing required argument: 'a'"):
        Base()
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        Base(1, nope=2)
    with pytest.raises(TypeError, match="multiple values"):
        Base(1, a=2)
    with pytest.raises(TypeError, match="positional"):
        Key("a", 1, 2)


def test_repr_eq_and_hash():
    assert repr(Base(1)) == "Base(a=1, b='x', tags=[])"  # repr=False keeps a secret out
    assert Base(1, hidden="p") == Base(1, hidden="q")    # compare=False
    assert Base(1) != Base(2) and Base(1) != Child(1)
    assert Base.__hash__ is None  # mutable records are unhashable, as dataclasses make them
    assert {Key("a"), Key("a"), Key("b")} == {Key("a"), Key("b")}


def test_frozen_refuses_assignment():
    k = Key("a", 22)
    with pytest.raises(FrozenInstanceError):
        k.port = 23
    with pytest.raises(AttributeError):
        del k.name
    assert replace(k, port=23) == Key("a", 23) and k.port == 22


def test_post_init_runs():
    class Doubled(Record):
        n: int = 1

        def __post_init__(self):
            self.n *= 2

    assert Doubled(4).n == 8


def test_mutable_default_is_refused():
    with pytest.raises(ValueError, match="default_factory"):
        class Bad(Record):
            items: list = []


def test_a_dataclass_decorator_on_top_changes_nothing():
    """Driver plugins written against the dataclass contract decorate their Config."""
    @dataclasses.dataclass
    class Plugin(Base):
        colour: str = "blue"
        sizes: dict = dataclasses.field(default_factory=dict)

    p = Plugin(1, colour="green")
    assert (p.a, p.b, p.tags, p.colour, p.sizes) == (1, "x", [], "green", {})
    assert [f.name for f in fields(Plugin)] == ["a", "b", "tags", "hidden", "colour", "sizes"]
    assert Plugin(1) == Plugin(1) and Plugin(1, sizes={"a": 1}) != Plugin(1)
