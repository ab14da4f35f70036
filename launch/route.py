"""`corrigible route`: route corrections (plan, skill, preference, control, undo); score a file.

Scoring prints ONE JSON object: `accuracy`, `n`, per-label `precision`/`recall`, `confusion`
(rows = true label in the order of `labels`, which is `corrigible.corrections.router.LABELS`:
plan, skill, preference, control, undo; columns = `confusion_columns`, the same labels and then
`ask_back`), and `ask_backs`. A decision the router was too unsure of to act on (a session would
ask "did you mean ...?") counts as not correct and lands in the `ask_back` column, whatever its
label. A malformed line or an unknown label exits with status 2 and a message naming the line
number.

Example:
    corrigible route --text "a bit more to the left"
    corrigible route --file corrections/data/labelled_corrections.jsonl --out route.json
    corrigible route --router llm --llm openai:qwen2.5:1.5b --file F.jsonl  # an LLM router

With `--router llm` the file score also counts the decisions the offline fallback made, by
reason (`fallbacks`), so a weak model cannot hide behind the grammar.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import Field, model_validator

from corrigible.boundary import check_output_path, escape, load_json, read_text
from corrigible.errors import ConfigError, CorrigibleError, LabelledFileError, ParseError
from corrigible.launch.schema import VerbConfig, choices

if TYPE_CHECKING:
    from corrigible.corrections.router import CorrectionRouter

# The scene `--text` interprets against unless `--visible` says otherwise.
_DEFAULT_VISIBLE: tuple[str, ...] = (
    "red block",
    "green block",
    "blue block",
    "red bowl",
    "green bowl",
    "blue bowl",
    "drawer",
)


def _router_names() -> list[str]:
    """The registered router types (imports the routers' registry, for the schema only)."""
    from corrigible.corrections.router import ROUTERS

    return ROUTERS.names()


class RouteConfig(VerbConfig):
    """What to route: a labelled file to score, or one text to route and interpret.

    `corrigible schema route` publishes it. `router` is checked when the router is built, so
    that a config costs no import of the routers.
    """

    file: Path | None = None  # JSONL of {"text", "label"} to score
    text: str | None = None  # one correction to route and interpret
    out: Path | None = None  # also write the printed JSON here
    # registered router type, a name of corrections.router.ROUTERS
    router: str = Field("grammar_embedding", json_schema_extra=choices(_router_names))
    visible: tuple[str, ...] = _DEFAULT_VISIBLE  # scene object names for interpreting --text
    skill: str | None = None  # skill running when the --text correction arrived
    llm: str | None = None  # LLM spec for `--router llm`: openai:<model>, local:<dir>, replay:<f>

    @model_validator(mode="after")
    def _one_input(self) -> RouteConfig:
        if (self.file is None) == (self.text is None):
            raise ConfigError(
                "give exactly one of --file (score a labelled JSONL file) or --text (route one "
                f"correction); got file={self.file} text={self.text!r}"
            )
        if self.text is not None and not self.text.strip():
            raise ConfigError("--text is empty; give the correction, e.g. 'a bit more to the left'")
        if self.out is not None:
            check_output_path(self.out, option="--out")
        return self


def read_labelled(path: Path) -> list[tuple[str, str]]:
    """Reads `{"text", "label"}` lines; blank lines are skipped.

    Raises:
        LabelledFileError: a line is not a JSON object with string `text` and a known `label`;
            the message names the line number.
    """
    from corrigible.corrections.router import LABELS

    shown = escape(path)
    try:
        text = read_text(path, what="labelled corrections file")
    except ConfigError as exc:  # missing, a directory, too large, not UTF-8 (byte offset)
        raise LabelledFileError(str(exc)) from None
    # Lines end at "\n" only (JSON Lines): `str.splitlines` would also split at a raw U+2028,
    # U+2029 or \x1c-\x1e, which are valid inside a JSON string.
    rows: list[tuple[str, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")  # CRLF files
        if not line.strip():
            continue
        where = f"{shown}:{number}"
        try:
            row = load_json(line, where=where)  # ConfigError: not JSON, nested too deeply
        except ConfigError as exc:
            raise LabelledFileError(
                f'{exc}; each line must be {{"text": "...", "label": "..."}}'
            ) from None
        if not isinstance(row, dict):
            raise LabelledFileError(
                f'{where}: expected a JSON object {{"text": "...", "label": "..."}}, got a '
                f"{type(row).__name__}: {escape(repr(line[:80]))}"
            )
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            got = escape(repr(row.get("text")))[:80]
            raise LabelledFileError(f'{where}: "text" must be a non-empty string, got {got}')
        if row.get("label") not in LABELS:
            raise LabelledFileError(
                f"{where}: unknown label {escape(repr(row.get('label')))[:80]}; labels are "
                f"{list(LABELS)}"
            )
        rows.append((row["text"], row["label"]))
    if not rows:
        raise LabelledFileError(
            f'{shown} has no labelled lines; write one {{"text": "...", "label": "..."}} per line'
        )
    return rows


def score(
    rows: list[tuple[str, str]], predicted: list[str], asked: list[bool] | None = None
) -> dict[str, Any]:
    """Accuracy, per-label precision/recall and the confusion matrix (rows true, cols predicted).

    `asked` marks the decisions the router would ask back about: they count as not correct
    and are counted in the last column, `ask_back`.
    """
    from corrigible.corrections.router import LABELS

    index = {label: i for i, label in enumerate(LABELS)}
    ask_column = len(LABELS)
    asked = asked or [False] * len(rows)
    confusion = [[0] * (len(LABELS) + 1) for _ in LABELS]
    for (_, true), pred, ask in zip(rows, predicted, asked, strict=True):
        confusion[index[true]][ask_column if ask else index[pred]] += 1
    per_label: dict[str, dict[str, float | int]] = {}
    for label, i in index.items():
        tp = confusion[i][i]
        predicted_n = sum(row[i] for row in confusion)
        true_n = sum(confusion[i])
        per_label[label] = {
            "precision": round(tp / predicted_n, 4) if predicted_n else 0.0,
            "recall": round(tp / true_n, 4) if true_n else 0.0,
            "support": true_n,
        }
    correct = sum(confusion[i][i] for i in range(len(LABELS)))
    return {
        "n": len(rows),
        "accuracy": round(correct / len(rows), 4),
        "labels": list(LABELS),
        "per_label": per_label,
        "confusion": confusion,
        "confusion_columns": [*LABELS, "ask_back"],
        "ask_backs": sum(asked),
    }


def run(cfg: RouteConfig) -> dict[str, Any]:
    """Routes `cfg.text` (with its interpretation) or scores `cfg.file`; prints and returns JSON.

    Raises:
        LabelledFileError: the labelled file is malformed.
    """
    from corrigible.corrections.router import default_router_config, make_router

    # The file is read and checked before the router (and its model) is built: a bad file is
    # answered at once.
    rows = read_labelled(cfg.file) if cfg.file is not None else None
    router_cfg = default_router_config(cfg.router)
    if cfg.llm is not None:
        if not hasattr(router_cfg, "llm"):
            raise ConfigError(
                f"--llm {cfg.llm!r} only applies to an LLM router; router {cfg.router!r} uses "
                "no LLM. Add --router llm."
            )
        router_cfg.llm = cfg.llm  # type: ignore[attr-defined]
    router = make_router(router_cfg)
    try:
        result = _route(cfg, router, rows)
    finally:
        close = getattr(router, "close", None)  # the LLM router owns its backend
        if close is not None:
            close()
    text = json.dumps(result)
    print(text, flush=True)
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(text + "\n", encoding="utf-8")
    return result


def _route(
    cfg: RouteConfig, router: CorrectionRouter, rows: list[tuple[str, str]] | None
) -> dict[str, Any]:
    """The JSON result of routing `cfg.text` or scoring the file's `rows` with `router`."""
    from corrigible.corrections.interpret import InterpretContext, interpret
    from corrigible.corrections.router import ask_back_question

    if rows is not None:
        decisions = router.route_many([text for text, _ in rows])
        result: dict[str, Any] = {"file": str(cfg.file), "router": cfg.router}
        result |= score(rows, [d.label for d in decisions], [d.ask_back for d in decisions])
        result["methods"] = {
            m: sum(d.method == m for d in decisions) for m in sorted({d.method for d in decisions})
        }
        kinds = [k for d in decisions if (k := getattr(d, "fallback_kind", None)) is not None]
        if hasattr(router, "fallback_router"):  # an LLM router: say how often it fell back
            result["fallbacks"] = {k: kinds.count(k) for k in sorted(set(kinds))}
    else:
        assert cfg.text is not None  # narrowed by RouteConfig.__post_init__
        decision = router.route(cfg.text)
        result = {"text": cfg.text, "decision": decision.to_dict()}
        ctx = InterpretContext(visible_objects=tuple(cfg.visible), current_skill=cfg.skill)
        if decision.ask_back:
            result["ask_back"] = ask_back_question(decision)
        if decision.label == "undo":  # no effects of its own: a session takes one back
            result["interpretation"] = None
            result["note"] = "undo takes back the last applied correction in a session"
            return result
        try:
            result["interpretation"] = interpret(cfg.text, decision.label, ctx).to_dict()
        except CorrigibleError as exc:  # still show the routing; say why it did not interpret
            result["interpretation"] = None
            result["interpretation_error"] = f"{type(exc).__name__}: {exc}"
    return result


def register(app: typer.Typer) -> None:
    """Adds the `route` verb."""

    @app.command("route")
    def route(
        file: Path | None = typer.Option(None, help='JSONL of {"text", "label"} to score'),
        text: str | None = typer.Option(None, help="one correction to route and interpret"),
        out: Path | None = typer.Option(None, help="also write the JSON to this file"),
        router: str = typer.Option("grammar_embedding", help="registered router type"),
        visible: str | None = typer.Option(
            None, help="comma-separated scene object names for interpreting --text"
        ),
        skill: str | None = typer.Option(None, help="skill running when --text was said"),
        llm: str | None = typer.Option(
            None,
            help="LLM spec for --router llm: openai:<model> (server from "
            "CORRIGIBLE_LLM_BASE_URL), local:<dir>, local:bundled, replay:<file>",
        ),
    ) -> None:
        """Route corrections; score a labelled file or route and interpret one text."""
        try:
            cfg = RouteConfig(
                file=file,
                text=text,
                out=out,
                router=router,
                visible=(
                    tuple(v.strip() for v in visible.split(",") if v.strip())
                    if visible
                    else _DEFAULT_VISIBLE
                ),
                skill=skill,
                llm=llm,
            )
            run(cfg)
        except (ConfigError, ParseError, KeyError) as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
