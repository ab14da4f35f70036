"""`extract_code`: code out of chatty, fenced, truncated or empty LLM answers."""

from __future__ import annotations

import pytest

from corrigible.errors import LLMOutputError
from corrigible.policies.llm import extract_code

CASES = {
    "fenced": ("```python\nsay('hi')\n```", "say('hi')"),
    "fenced-with-chatter": (
        "Sure! Here is the code:\n```python\nput_first_on_second('a', 'b')\n```\nHope it helps.",
        "put_first_on_second('a', 'b')",
    ),
    "py-tag": ("```py\nx = 1\n```", "x = 1"),
    "untagged-fence": ("```\nsay('x')\n```", "say('x')"),
    "two-blocks": ("```python\na = 1\n```\nthen\n```python\nsay(a)\n```", "a = 1\n\nsay(a)"),
    "truncated-fence": ("```python\nsay('a')\nsay('b')", "say('a')\nsay('b')"),
    "indented-fence": ("1. do:\n   ```python\n   say('x')\n   ```", "say('x')"),
    "other-language-ignored": ("```bash\nls\n```\n```python\nsay(1)\n```", "say(1)"),
    "raw-code": ("pos = get_obj_pos('red block')\ngoto_pos(pos)", None),
    "raw-with-chatter": (
        "Okay, I will do it.\nput_first_on_second('a', 'b')\nThat should work!",
        "put_first_on_second('a', 'b')",
    ),
    "raw-block": (
        "Here:\nfor n in names:\n    say(n)\nDone, I think.",
        "for n in names:\n    say(n)",
    ),
}


@pytest.mark.parametrize(("answer", "expected"), CASES.values(), ids=CASES.keys())
def test_extracts_code(answer: str, expected: str | None) -> None:
    assert extract_code(answer) == (answer if expected is None else expected)


NO_CODE = {
    "empty": ("", "empty"),
    "blank": ("  \n ", "empty"),
    "prose": ("I am sorry, I cannot move the robot.", "no Python code"),
    "lone-word": ("Sure", "no Python code"),
    "repetition": ("put the red block in the blue bowl\n" * 5, "no Python code"),
    "broken-fence": ("```python\nput_first_on_second('a',\n```", "does not parse"),
    "empty-fence": ("```python\n\n```", "empty code fences"),
}


@pytest.mark.parametrize(("answer", "match"), NO_CODE.values(), ids=NO_CODE.keys())
def test_no_code_is_a_clear_output_error(answer: str, match: str) -> None:
    with pytest.raises(LLMOutputError, match=match) as info:
        extract_code(answer)
    assert isinstance(info.value, ValueError)


def test_long_rambling_answer_is_fast_and_finds_the_code() -> None:
    answer = "\n".join(["The robot should be careful."] * 60 + ["say('done')"] + ["Thanks."] * 60)
    assert extract_code(answer) == "say('done')"
