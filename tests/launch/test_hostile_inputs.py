"""The hostile-input corpus through the real CLI: a clear error, exit 2, never a traceback.

Every file of `tests/hostile_inputs/` (scenario and suite YAML, labelled correction JSONL, CLI
option lists; `README.md` there says what each holds and must give) is given to its verb. The
answer must carry the exit status `expected.json` lists, an error message holding every one of
the case's words (the file, the line or field, the problem), no "Traceback", and no raw
terminal control character in anything printed.

All cases run in-process (typer's runner: the same app, parsing and printing, fast); the
cases tagged `subprocess` also run as real processes, as a user runs them.
`CORRIGIBLE_HOSTILE_ALL=1` runs every case as a real process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corrigible.launch.cli import build_app

CORPUS = Path(__file__).resolve().parents[1] / "hostile_inputs"
_SPEC = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
CASES: dict[str, dict] = _SPEC["cases"]
COMMANDS: dict[str, list[str]] = _SPEC["commands"]
_ALL_AS_PROCESSES = os.environ.get("CORRIGIBLE_HOSTILE_ALL") == "1"
# What must never reach a terminal raw: C0 controls but tab and newline, DEL, C1 controls.
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _argv(rel: str, tmp: Path) -> list[str]:
    """The CLI arguments of a case (a folder's command, or an options file's own list)."""
    folder = rel.split("/")[0]
    (tmp / "file").write_text("a plain file\n")
    if folder == "options":
        args = json.loads((CORPUS / rel).read_text(encoding="utf-8"))
    else:
        args = list(COMMANDS[folder])
    return [
        a.replace("FILE", str(CORPUS / rel)).replace("TMP", str(tmp)).replace("{tmp}", str(tmp))
        for a in args
    ]


def _check(rel: str, code: int, stdout: str, stderr: str) -> None:
    case = CASES[rel]
    shown = f"exit {code}\nstdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr and "Traceback" not in stdout, shown
    assert code == case["exit"], shown
    name = Path(rel).name
    for needle in case["needles"]:
        assert needle.replace("{name}", name) in stderr, f"{needle!r} missing; {shown}"
    raw = _RAW_CONTROL.search(stdout + stderr)
    assert raw is None, f"raw control character {raw.group()!r} printed; {shown}"


def test_the_corpus_is_what_make_corpus_writes():
    """The committed files, expected.json and README are `make_corpus.CASES`, byte for byte."""
    sys.path.insert(0, str(CORPUS))
    try:
        import make_corpus
    finally:
        sys.path.remove(str(CORPUS))
    assert {c.path for c in make_corpus.CASES} == set(CASES)
    for case in make_corpus.CASES:
        assert (CORPUS / case.path).read_bytes() == case.data, case.path
    on_disk = {
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.is_file() and p.parent != CORPUS and "__pycache__" not in p.parts
    }
    assert on_disk == set(CASES), "files in the corpus that make_corpus.py does not write"
    assert (CORPUS / "README.md").read_text(encoding="utf-8") == make_corpus._readme(
        make_corpus.CASES
    )


def test_every_class_has_cases():
    folders = {rel.split("/")[0] for rel in CASES}
    assert folders == {"scenarios", "suites", "corrections", "options"}
    for folder in folders:
        assert sum(rel.startswith(folder) for rel in CASES) >= 10, folder


@pytest.mark.parametrize("rel", sorted(CASES), ids=sorted(CASES))
def test_in_process(rel, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # verbs write runs/ relative to the working directory
    if _ALL_AS_PROCESSES:
        pytest.skip("CORRIGIBLE_HOSTILE_ALL=1: every case runs as a real process instead")
    result = CliRunner().invoke(build_app(), _argv(rel, tmp_path))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: show it whole
    _check(rel, result.exit_code, result.stdout, result.stderr)


_PROCESS_CASES = sorted(rel for rel, c in CASES.items() if c["subprocess"] or _ALL_AS_PROCESSES)


@pytest.mark.parametrize("rel", _PROCESS_CASES, ids=_PROCESS_CASES)
def test_as_a_process(rel, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "corrigible.launch.cli", *_argv(rel, tmp_path)],
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    # Decoded leniently so that raw bytes, were any printed, are seen (and fail) here.
    out = proc.stdout.decode("utf-8", "backslashreplace")
    err = proc.stderr.decode("utf-8", "backslashreplace")
    _check(rel, proc.returncode, out, err)


# ------------------------------------------------------------------ what the verbs print


def test_run_and_trace_show_print_typed_text_escaped(tmp_path):
    """ANSI, bell and CR in the instruction and a correction are shown escaped, never raw."""
    trace = tmp_path / "trace.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "corrigible.launch.cli",
            "run",
            "\x1b[31mdance\x07 wildly\r",
            "--correct",
            "\x1b]0;pwned\x07no, the gray bowl",
            "--trace",
            str(trace),
        ],
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    out = proc.stdout.decode("utf-8", "backslashreplace")
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 2 and "Traceback" not in err, out + err
    assert "# grammar planner, family None: \\x1b[31mdance\\x07 wildly\\r" in out
    assert "[correction] '\\x1b]0;pwned\\x07no, the gray bowl': refused" in out
    assert "error: the grammar planner does not understand" in err
    assert _RAW_CONTROL.search(out + err) is None
    shown = CliRunner().invoke(build_app(), ["trace", "show", str(trace)])
    assert shown.exit_code == 0 and "\\x1b[31mdance\\x07 wildly\\r" in shown.stdout
    assert _RAW_CONTROL.search(shown.stdout) is None


def test_trace_show_survives_a_damaged_trace(tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_bytes(
        b'{"kind": "skill", "skill": "pick", "message": "ok\\u001b[2J", "sim_time_s": 1.0}\n'
        b"\xff\xfe not utf-8\n"
        + b"[" * 100_000
        + b"]" * 100_000
        + b"\n"
        + b'["not", "an", "event"]\n'
        + b'{"kind": "skill", "sim_time_s": "soon"}\n'
        + b'{"kind": "plan", "instruction": "x", "program": "a\\u2028b\\n\\u001b[31mc"}\n'
    )
    shown = CliRunner().invoke(build_app(), ["trace", "show", str(trace)])
    assert shown.exception is None or isinstance(shown.exception, SystemExit)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert "skill pick() 0.00s: ok\\x1b[2J" in lines[0]
    assert lines[1:4] == [f"line {n}: (unreadable trace line, skipped)" for n in (2, 3, 4)]
    assert lines[4] == "line 5: skill (fields not shown)"
    assert lines[-2:] == ["           | a\\u2028b", "           | \\x1b[31mc"]
    assert _RAW_CONTROL.search(shown.stdout) is None


def test_rich_output_escapes_markup_and_control_characters():
    from rich.console import Console

    from corrigible.launch.progress import plain

    console = Console(record=True, width=200, color_system=None)
    console.print("LLM " + plain("[/bold][red]x\x1b[2J"))  # unescaped: a MarkupError
    assert console.export_text().strip() == "LLM [/bold][red]x\\x1b[2J"
