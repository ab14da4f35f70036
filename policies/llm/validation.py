"""Pulls the Python program out of an LLM answer, or says clearly that there is none.

Chat models wrap code in Markdown fences and add chatter ("Sure! Here is the code:"); base models
(e.g. the bundled Gemma 270M) ramble, repeat or stop mid-line. This module only *extracts* code
and checks that it parses; whether the code is safe to run is the sandbox validator's job.
"""

from __future__ import annotations

import ast
import re
import textwrap

from corrigible.errors import LLMOutputError

# ```python ... ``` (also ```py, ```Python3 or a bare ```). The closing fence is optional: an
# answer cut off by max_tokens still holds usable code up to the cut.
_FENCE = re.compile(
    r"^[ \t]*```[ \t]*(?P<lang>[A-Za-z0-9_+-]*)[^\n]*\n(?P<body>.*?)(?:^[ \t]*```|\Z)",
    re.DOTALL | re.MULTILINE,
)
_PYTHON_LANGS = frozenset({"", "python", "python3", "py", "py3"})
# Raw answers longer than this are searched by a cheaper rule (see `_longest_code_span`).
_MAX_SPAN_SEARCH_LINES = 80
# Statements that show intent to act; a lone name or constant ("Sure", "42") is not a program.
_CODE_NODES = (
    ast.Call,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.FunctionDef,
    ast.For,
    ast.While,
    ast.If,
    ast.With,
    ast.Return,
    ast.Import,
    ast.ImportFrom,
)


def extract_code(text: str) -> str:
    """Returns the Python program in an LLM answer.

    Fenced blocks win: every ```python (or untagged) block is taken, in order, joined by a blank
    line. Without fences, the longest run of lines that parses as Python and does something (a
    call, assignment, loop, ...) is taken, which drops chatter before and after raw code.

    Args:
        text: the assistant message.

    Returns:
        The code, stripped of surrounding blank lines, guaranteed to parse with `ast.parse`.

    Raises:
        LLMOutputError: the answer holds no code, or its fenced code does not parse; the
            message quotes the answer so the failure can be logged and the prompt fixed.
    """
    if not isinstance(text, str) or not text.strip():
        raise LLMOutputError(
            "the LLM answer is empty; no code to run. Re-prompt, raise max_tokens, or use a "
            "stronger model."
        )
    blocks = [
        m.group("body") for m in _FENCE.finditer(text) if m.group("lang").lower() in _PYTHON_LANGS
    ]
    if blocks:
        # Dedent each block: fences inside Markdown lists are indented as a whole.
        code = "\n\n".join(textwrap.dedent(b).strip("\n") for b in blocks if b.strip())
        if not code.strip():
            raise LLMOutputError(f"the LLM answer has only empty code fences: {_quote(text)}.")
        try:
            ast.parse(code)
        except SyntaxError as exc:
            raise LLMOutputError(
                f"the code in the LLM answer does not parse (line {exc.lineno}: {exc.msg}): "
                f"{_quote(code)}. Re-prompt with the error, or use a stronger model."
            ) from exc
        return code
    code = _longest_code_span(text.strip("\n").splitlines())
    if code is None:
        raise LLMOutputError(
            f"the LLM answer holds no Python code: {_quote(text)}. Ask for a ```python block, "
            "or use a stronger model."
        )
    return code


def _is_program(source: str) -> bool:
    """True when `source` parses and contains at least one statement that acts."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(node, _CODE_NODES) for node in ast.walk(tree))


def _longest_code_span(lines: list[str]) -> str | None:
    """The longest contiguous run of lines forming a program, or None.

    Searching every (start, end) pair is quadratic in parses, fine for typical answers. Longer
    ones are first trimmed line by line from both ends, which handles chatter around one code
    region (the usual shape of a base model's answer).
    """
    if len(lines) > _MAX_SPAN_SEARCH_LINES:
        lines = _trim_chatter(lines)
    n = len(lines)
    for length in range(n, 0, -1):
        for start in range(0, n - length + 1):
            chunk = "\n".join(lines[start : start + length])
            # A span must begin at column 0: an indented first line is a fragment of a block.
            if chunk.strip() and not lines[start][:1].isspace() and _is_program(chunk):
                return chunk.strip("\n")
    return None


def _trim_chatter(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not _is_program("\n".join(lines[start:end])):
        # Drop whichever end line is not code on its own; prefer the leading one (greetings).
        if not _is_program(lines[start]):
            start += 1
        else:
            end -= 1
    return lines[start:end]


def _quote(text: str, limit: int = 300) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")
