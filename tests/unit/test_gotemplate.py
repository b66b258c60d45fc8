import pytest

from machine.errors import UsageError
from machine.gotemplate import render, render_rows, tabwrite

DATA = {"Name": "n1", "Driver": {"IPAddress": "10.0.0.1", "Tags": ["a", "b"]}, "On": True, "None": None,
        "Map": {"k": "v"}}


@pytest.mark.parametrize("fmt,expected", [
    ("{{.Name}}", "n1"),
    ("name={{ .Name }} ip={{.Driver.IPAddress}}", "name=n1 ip=10.0.0.1"),
    ("{{json .Driver}}", '{"IPAddress":"10.0.0.1","Tags":["a","b"]}'),
    ("{{json .}}", '{"Name":"n1","Driver":{"IPAddress":"10.0.0.1","Tags":["a","b"]},"On":true,"None":null,"Map":{"k":"v"}}'),
    ("{{.On}}", "true"),
    ("{{.None}}", "<no value>"),
    ("{{.Driver.Tags}}", "[a b]"),
    ("{{upper .Name}}", "N1"),
    ('{{join .Driver.Tags ","}}', "a,b"),
    ('{{index .Map "k"}}', "v"),
    ("{{.Name}}\\t{{.On}}", "n1\ttrue"),
])
def test_render(fmt, expected):
    assert render(fmt, DATA) == expected


@pytest.mark.parametrize("fmt,msg", [
    ("{{.Nope}}", "can't evaluate field Nope"),
    ("{{.Name", "unclosed action"),
    ("{{frob .Name}}", "function 'frob' not defined"),
])
def test_render_errors(fmt, msg):
    with pytest.raises(UsageError, match=msg):
        render(fmt, DATA)


def test_table_rows_align_with_headers():
    out = render_rows("table {{.Name}}\t{{.DriverName}}", [{"Name": "a", "DriverName": "none"},
                                                            {"Name": "longer-name", "DriverName": "qemu"}],
                      {"DriverName": "DRIVER"})
    assert out.splitlines() == ["NAME          DRIVER", "a             none", "longer-name   qemu"]


def test_tabwrite_trailing_empty_cells():
    assert tabwrite(["a\tb\t", "ccc\t\t"]) == "a     b\nccc\n"
