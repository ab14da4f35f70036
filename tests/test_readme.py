"""The top README's Python example runs as written (real MuJoCo, MiniLM and knowledge base)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python API: the session") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's session section has no python block"
    return match.group(1)


def test_the_readme_session_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its knowledge base goes to runs/readme-kb under here
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_python_example(), str(README), "exec"), {"__name__": "readme"})
    printed = out.getvalue().splitlines()
    assert "success: True" in printed, printed
    assert "learned: put red things in the gray bowl" in printed, printed
    assert any("place target red bowl -> gray bowl" in line for line in printed), printed
    assert (tmp_path / "runs" / "readme-kb").is_dir()
