"""The LLM planner: Code-as-Policies prompting against any `LLMBackend`, with recursive fgen.

Recursive function generation (fgen) defines the calls the model leaves undefined.

Prompts live in `prompts/` (system text with the API, few-shot examples as commands-in-comments
then code, the fgen template). The session's earlier instructions and programs, retrieved
knowledge and this episode's corrections go into the prompt. Weak models fail often; every
failure (no code, invalid code, forbidden constructs, unresolvable calls) comes back as an
`LLMOutputError` naming the problem, never as a crash.

User text never becomes code here either: the program is the model's output (validated, then
run in the sandbox), and the instruction, corrections and knowledge reach only the prompt,
each folded onto one line first (`_one_line`), so a newline in them cannot start a line of
"code" in the few-shot format the model continues.
"""

from __future__ import annotations

import ast
import unicodedata
from importlib import resources

from corrigible.errors import LLMOutputError
from corrigible.policies.llm.base import ChatMessage, LLMBackend
from corrigible.policies.llm.validation import extract_code
from corrigible.policies.planners.base import PlanContext, Planner, Program
from corrigible.policies.planners.checks import checkpoint_warnings
from corrigible.policies.robot_api import api_doc, api_names
from corrigible.policies.sandbox import validate_program
from corrigible.sim_envs.locations import location_names

_PROMPT_TEXT_CHARS = 500  # of one instruction, correction or knowledge line in the prompt
_PROBLEM_CHARS = 300  # of one validation problem quoted in an LLMOutputError


def _one_line(text: str, limit: int = _PROMPT_TEXT_CHARS) -> str:
    """Folds `text` onto one line of at most `limit` characters, for the prompt.

    Control and format characters become spaces, and every run of whitespace (newlines,
    U+2028 ...) one space.
    """
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    line = " ".join(cleaned.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _prompt(name: str) -> str:
    return (resources.files("corrigible.policies.planners") / "prompts" / name).read_text()


def _signatures(source: str, names: set[str]) -> dict[str, str]:
    """For each undefined function called in `source`, a signature built from one call site."""
    sigs: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            args = []
            for i, arg in enumerate(node.args):
                args.append(arg.id if isinstance(arg, ast.Name) else f"arg{i}")
            args += [kw.arg for kw in node.keywords if kw.arg]
            sigs.setdefault(node.func.id, f"{node.func.id}({', '.join(args)})")
    return sigs


class LLMPlanner(Planner):
    """Plans by prompting an LLM; fgen writes missing functions, depth-limited and cached.

    Args:
        llm: the backend (openai:, local:, replay:).
        prompt_style: "full" (API, few-shot examples, history) or "compact" (for models with a
            context of a few hundred tokens).
        fgen_depth: how deep generated functions may call further undefined functions.
        max_tokens: completion budget per request.
    """

    name = "llm"

    def __init__(
        self,
        llm: LLMBackend,
        *,
        fgen_depth: int = 2,
        max_tokens: int = 512,
        prompt_style: str = "full",
    ) -> None:
        if prompt_style not in ("full", "compact"):
            raise LLMOutputError(f"prompt_style must be 'full' or 'compact', got {prompt_style!r}")
        self.prompt_style = (
            prompt_style  # "compact": one short system line, no examples (tiny contexts)
        )
        self.llm = llm
        self.fgen_depth = fgen_depth
        self.max_tokens = max_tokens
        self._fgen_cache: dict[str, str] = {}
        self._calls = 0  # LLM requests of the plan being written (program + fgen)
        self.name = f"llm:{llm.name}"

    def _messages(self, instruction: str, ctx: PlanContext) -> list[ChatMessage]:
        if self.prompt_style == "compact":
            return [
                ChatMessage.system(_prompt("system_compact.txt").strip()),
                ChatMessage.user(_one_line(instruction)),
            ]
        api = "\n".join(f"  {sig}: {doc}" for sig, doc in api_doc().items())
        system = _prompt("system.txt").format(api=api, locations=", ".join(location_names()))
        if ctx.knowledge:
            system += "\nThings learned from earlier corrections (follow them):\n" + "\n".join(
                f"- {_one_line(k)}" for k in ctx.knowledge
            )
        if ctx.corrections:
            system += "\nCorrections given during this task:\n" + "\n".join(
                f"- {_one_line(c)}" for c in ctx.corrections
            )
        messages = [ChatMessage.system(system)]
        for example in _prompt("fewshot.txt").split("==="):
            lines = example.strip().splitlines()
            messages.append(ChatMessage.user("\n".join(lines[:2])))
            messages.append(ChatMessage.assistant("```python\n" + "\n".join(lines[2:]) + "\n```"))
        for item in ctx.history[-5:]:
            messages.append(ChatMessage.user(f"# {_one_line(item.instruction)}"))
            messages.append(ChatMessage.assistant("```python\n" + item.program.strip() + "\n```"))
        messages.append(
            ChatMessage.user(f"# objects = {ctx.object_names!r}\n# {_one_line(instruction)}.")
        )
        return messages

    def _code(self, messages: list[ChatMessage]) -> tuple[str, str]:
        response = self.llm.complete(messages, max_tokens=self.max_tokens)
        return extract_code(response.text), response.text

    def plan(self, instruction: str, context: PlanContext) -> Program:
        """Prompts the LLM for a program, defines its undefined calls (fgen) and validates it."""
        self._calls = 1
        source, raw = self._code(self._messages(instruction, context))
        definitions = self._resolve_undefined(source, depth=0, defined=set())
        full = "\n\n".join([*definitions, source]) + "\n"
        report = validate_program(full, api_names())
        if not report.ok:
            problems = "; ".join(
                f"line {p.line}: {_one_line(p.message, _PROBLEM_CHARS)}"
                for p in report.problems[:5]
            )
            raise LLMOutputError(
                f"the {self.llm.name} planner wrote a program the sandbox refuses: {problems}"
            )
        # Runnable, but a program without checkpoints cannot be monitored: say so, run it.
        notes = checkpoint_warnings(full)
        return Program(
            source=full,
            planner=self.name,
            family="llm",
            raw_llm_output=raw,
            notes=notes,
            llm_calls=self._calls,
        )

    def _resolve_undefined(self, source: str, depth: int, defined: set[str]) -> list[str]:
        report = validate_program(source, api_names() + sorted(defined))
        missing = set(report.undefined_calls) - defined
        if not missing:
            return []
        if depth >= self.fgen_depth:
            raise LLMOutputError(
                f"functions still undefined after {self.fgen_depth} levels of generation: "
                f"{sorted(missing)}"
            )
        out: list[str] = []
        for name, signature in sorted(_signatures(source, missing).items()):
            if signature not in self._fgen_cache:
                messages = [
                    ChatMessage.system(
                        _prompt("system.txt").format(
                            api="\n".join(f"  {s}: {d}" for s, d in api_doc().items()),
                            locations=", ".join(location_names()),
                        )
                    )
                ]
                messages.append(ChatMessage.user(_prompt("fgen.txt").format(signature=signature)))
                self._calls += 1
                code, _ = self._code(messages)
                tree = ast.parse(code)
                if not any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
                    raise LLMOutputError(
                        f"asked to define {signature}, the model wrote no such function"
                    )
                self._fgen_cache[signature] = code
            code = self._fgen_cache[signature]
            defined.add(name)
            out += self._resolve_undefined(code, depth + 1, defined)
            out.append(code)
        return out
