"""Static rules of the sandbox: what parses, what is forbidden, what counts as undefined."""

from __future__ import annotations

import keyword

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corrigible.policies.sandbox import (
    ErrorClass,
    ValidationReport,
    allowlists,
    checker,
    validate_program,
)

API = ("say", "get_obj_pos", "get_obj_names", "pick_place")

ALLOWED = {
    "cap_program": (
        "names = get_obj_names()\n"
        "for n in names:\n"
        "    p = get_obj_pos(n)\n"
        "    pick_place(n, p + np.array([0, 0.1, 0]))\n"
        "say(f'done {len(names)}')\n"
    ),
    "throwaway_underscore": "for _ in range(3):\n    pass\n",
    "helpers_and_lambda": (
        "def f(x, *a, k=1, **kw):\n    return x\nprint(sorted([3, 1], key=lambda v: -v))\n"
    ),
    "generator": "def g():\n    yield 1\n    yield from [2]\nprint(list(g()))\n",
    "try_except": (
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    print(e.args)\nfinally:\n    pass\n"
    ),
    "np_linalg": "print(np.linalg.norm(np.zeros(3)), math.pi)\n",
    "fstring_conversions": "x = 1\nprint(f'{x!r:>{4}} {x!s} {x!a}')\n",
    "walrus_comprehension": "print([y for x in range(3) if (y := x * 2)])\n",
    "subscript_store": "d = {}\nd['k'] = [1]\nd['k'][0] += 1\ndel d['k']\n",
    "ndarray_methods": "a = np.zeros(3)\nprint(a.shape, a.T, a.tolist(), a.reshape(3, 1).sum())\n",
    "isinstance_class": "print(isinstance(1, int), isinstance('a', (str, list)))\n",
    "percent_format": "print('%s %d' % ('a', 1))\n",
}

FORBIDDEN = {
    "dunder_attr": "().__class__",
    "dunder_name": "__builtins__",
    "private_attr": "x = 1\nx._secret",
    "private_name": "_hidden = 1",
    "import": "import os",
    "import_from": "from os import path",
    "exec": "exec('1')",
    "eval": "eval('1')",
    "compile": "compile('1', 'x', 'eval')",
    "open": "open('f')",
    "getattr": "getattr(1, 'real')",
    "globals": "globals()",
    "type": "type(1)",
    "format_call": "'{0}'.format(1)",
    "format_map": "'{a}'.format_map({})",
    "class": "class A:\n    pass",
    "with": "with x:\n    pass",
    "global": "def f():\n    global y",
    "nonlocal": "def f():\n    y = 1\n    def g():\n        nonlocal y",
    "async": "async def f():\n    pass",
    "match": "match 1:\n    case int():\n        pass",
    "gi_frame": "def g():\n    yield\ng().gi_frame",
    "f_back": "x = 1\nx.f_back",
    "tb_frame": "x = 1\nx.tb_frame",
    "cell_contents": "x = 1\nx.cell_contents",
    "mro": "str.mro()",
    "attr_store": "x = [1]\nx.y = 2",
    "np_load": "np.load('x')",
    "np_ctypeslib": "np.ctypeslib",
    "np_lib": "np.lib",
    "np_linalg_unknown": "np.linalg.lapack_lite",
    "ndarray_ctypes": "np.zeros(1).ctypes",
    "ndarray_tofile": "np.zeros(1).tofile('x')",
    "rebind_np": "np = 1",
    "keyword_dunder": "dict(__x=1)",
    "fullwidth_exec": "ｅｘｅｃ('1')",
    "vertical_low_line": "()._︳class︳︳",
}


@pytest.mark.parametrize("source", list(ALLOWED.values()), ids=list(ALLOWED))
def test_allowed_programs_pass(source: str) -> None:
    report = validate_program(source, API)
    assert report.ok, report.to_json()


@pytest.mark.parametrize("source", list(FORBIDDEN.values()), ids=list(FORBIDDEN))
def test_forbidden_programs_are_rejected_with_a_line(source: str) -> None:
    report = validate_program(source, API)
    assert not report.ok
    first = report.first_problem
    assert first is not None and first.error_class is ErrorClass.FORBIDDEN
    assert first.line is not None and first.message


def test_syntax_error_reports_line() -> None:
    report = validate_program("x = 1\ndef f(:\n", API)
    assert report.first_problem.error_class is ErrorClass.SYNTAX
    assert report.first_problem.line == 2


@pytest.mark.parametrize("source", ["-" * 30000 + "1", "x" + ".y" * 20000, "\x00"])
def test_pathological_sources_are_syntax_errors(source: str) -> None:
    report = validate_program(source, API)
    assert report.first_problem.error_class is ErrorClass.SYNTAX


def test_undefined_calls_are_listed_for_fgen() -> None:
    source = (
        "def helper(x):\n    return x\n"
        "pts = parse_positions('corners')\n"
        "helper(pts)\n"
        "move_to(get_obj_pos('a'))\n"
        "move_to(1)\n"
    )
    report = validate_program(source, API)
    assert report.undefined_calls == ("parse_positions", "move_to")
    assert report.is_safe and not report.ok
    assert {p.error_class for p in report.problems} == {ErrorClass.UNKNOWN_API}
    assert report.problems[0].line == 3


def test_unknown_api_suggests_close_name() -> None:
    report = validate_program("get_obj_pso('a')", API)
    assert "Did you mean 'get_obj_pos'" in report.problems[0].message


def test_report_is_json_able() -> None:
    import json

    report = validate_program("import os\nfoo()", API)
    assert isinstance(report, ValidationReport)
    json.dumps(report.to_json())


def test_allowlists_hold_no_internal_names() -> None:
    for name in allowlists.SAFE_ATTRIBUTES:
        assert checker.attribute_problem(name) is None, name
    for name in ("__class__", "gi_frame", "f_back", "tb_frame", "co_code", "format", "mro"):
        assert checker.attribute_problem(name) is not None, name


_identifier_tail = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x7F)
    | st.just("_"),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(tail=_identifier_tail)
def test_underscore_names_are_always_rejected(tail: str) -> None:
    name = "_" + tail
    if name == "_" or not name.isidentifier() or keyword.iskeyword(name):
        return
    for source in (f"{name} = 1", f"x = 1\nx.{name}", f"def {name}():\n    pass"):
        report = validate_program(source, API)
        assert not report.ok, source
        assert report.first_problem.error_class is ErrorClass.FORBIDDEN


@settings(max_examples=200, deadline=None)
@given(tail=_identifier_tail)
def test_underscore_attributes_are_always_rejected(tail: str) -> None:
    attr = "_" + tail
    if not attr.isidentifier():
        return
    report = validate_program(f"y = [1]\nprint(y.{attr})", API)
    assert report.first_problem is not None
    assert report.first_problem.error_class is ErrorClass.FORBIDDEN


@settings(max_examples=100, deadline=None)
@given(attr=st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z"))
def test_attributes_outside_allowlist_are_rejected(attr: str) -> None:
    report = validate_program(f"y = [1]\nprint(y.{attr})", API)
    if keyword.iskeyword(attr):
        return
    assert report.ok == (attr in allowlists.SAFE_ATTRIBUTES)
