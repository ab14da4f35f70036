"""`corrigible kb`: inspect and edit the knowledge base of distilled corrections.

Example:
    corrigible kb list                       # active entries of runs/kb (or $CORRIGIBLE_KB)
    corrigible kb search "pick up the slippery red cylinder" --k 3
    corrigible kb show 5fc6c064              # a unique id prefix is enough
    corrigible kb export runs/kb-export.jsonl
    corrigible kb check runs/kb              # exit 0 clean, 1 damage found, 2 unusable

Reading commands open the directory read-only, so they work while a robot is writing to it.
`delete` and `repair` take the writer lock. A knowledge base that does not exist yet (no
directory, or an empty one) reads as empty; a deleted or unreadable log, lost acknowledged
records, an unknown id or a bad option exit with status 2 and a message saying what to do.
`check` writes nothing and reports the entries, the last acknowledged record, damaged, missing
and quarantined records and the index's consistency; `repair` keeps every intact record and
quarantines the damage.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Literal, get_args

import typer
from pydantic import Field, field_validator, model_validator

from corrigible.errors import ConfigError, CorrigibleError
from corrigible.launch.schema import VerbConfig, choices

Action = Literal["list", "show", "search", "delete", "export", "repair", "check"]
_ACTIONS: tuple[str, ...] = get_args(Action)
_DEFAULT_KB = Path("runs/kb")
_MODES = ("text", "text+visual", "visual")
_KINDS = ("plan_rule", "preference", "skill_params")


def default_kb_path() -> Path:
    """$CORRIGIBLE_KB, else runs/kb."""
    return Path(os.environ.get("CORRIGIBLE_KB") or _DEFAULT_KB)


class KbConfig(VerbConfig):
    """One `corrigible kb` invocation (`corrigible schema kb`)."""

    action: Action  # list | show | search | delete | export | repair | check
    kb: Path = Field(default_factory=default_kb_path)  # knowledge-base dir; $CORRIGIBLE_KB, runs/kb
    entry_id: str | None = None  # show/delete: an id or a unique id prefix
    query: str | None = None  # search: the task or object description
    k: int = Field(5, json_schema_extra={"minimum": 1})  # search: at most this many hits
    mode: str = Field("text", json_schema_extra=choices(_MODES))  # search: what is compared
    image: Path | None = None  # search: an RGB crop of the object (PNG/JPG)
    metres_per_pixel: float | None = None  # search: m per pixel of the crop, for the size cue
    kind: str | None = Field(None, json_schema_extra=choices(_KINDS))  # list/search: entry kind
    include_superseded: bool = False  # list: also superseded entries
    as_json: bool = False  # list: JSON instead of a table
    out: Path | None = None  # export: the JSONL file to write

    @field_validator("action", mode="before")
    @classmethod
    def _known_action(cls, value: Any) -> Any:
        if value not in _ACTIONS:
            raise ConfigError(f"action must be one of {list(_ACTIONS)}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _usable(self) -> KbConfig:
        """The first unusable option, in the order the options are read."""
        if self.action in ("show", "delete") and not self.entry_id:
            raise ConfigError(f"`kb {self.action}` needs an entry id (see `corrigible kb list`)")
        if self.action == "search" and not (self.query or "").strip() and self.mode != "visual":
            raise ConfigError("`kb search` needs a non-empty QUERY")
        if self.k < 1:
            raise ConfigError(f"--k must be >= 1, got {self.k}")
        if self.mode not in _MODES:
            raise ConfigError(f"--mode must be one of {list(_MODES)}, got {self.mode!r}")
        if self.mode != "text" and self.image is None:
            raise ConfigError(f"--mode {self.mode} needs --image CROP.png of the object")
        if self.image is not None and not self.image.is_file():
            raise ConfigError(f"--image {self.image} does not exist")
        if self.kind is not None and self.kind not in _KINDS:
            raise ConfigError(f"--kind must be one of {list(_KINDS)}, got {self.kind!r}")
        if self.action == "export" and self.out is None:
            raise ConfigError("`kb export` needs an output PATH")
        return self


def _entry_json(entry: Any, *, full: bool) -> dict[str, Any]:
    data = entry.model_dump(mode="json")
    data["confidence"] = round(entry.confidence, 4)  # derived from the evidence, not stored
    if not full and data.get("visual_embedding") is not None:
        data["visual_embedding"] = f"<{len(data['visual_embedding'])}-d descriptor>"
    return data


def _read_crop(path: Path) -> Any:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ConfigError(f"--image {path} is not a readable image (PNG or JPEG expected)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _print_table(entries: list[Any], kb: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"knowledge base {kb} ({len(entries)} entries)")
    for column in ("id", "kind", "skill", "text", "scope", "conf", "active", "episodes"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.id[:8],
            entry.kind,
            entry.skill or "",
            entry.summary(60),
            entry.scope.describe(),
            f"{entry.confidence:.2f}" if entry.kind == "skill_params" else "",
            (
                f"retired: {entry.retired}"
                if entry.retired
                else "yes"
                if entry.active
                else f"-> {entry.superseded_by[:8]}"
            ),
            ",".join(sorted({p.episode for p in entry.provenance})),
        )
    Console().print(table)


def run(cfg: KbConfig) -> Any:
    """Carries out one action and prints its result (JSON, or a table for `list`).

    Returns:
        The JSON-able result that was printed.

    Raises:
        CorrigibleError: an unknown id, a damaged directory, a locked writer, a bad option.
    """
    from corrigible.memory.knowledge_base import KnowledgeBase, KnowledgeBaseConfig, check

    writes = cfg.action in ("delete", "repair")
    if cfg.action == "check":
        if cfg.kb.exists() and not cfg.kb.is_dir():
            raise ConfigError(f"{cfg.kb} is a file, not a knowledge-base directory")
        report = check(cfg.kb).to_dict()
        print(json.dumps(report, indent=2, ensure_ascii=False))
        for finding in report["findings"]:
            print(f"{finding['severity']}: {finding['what']}", file=sys.stderr)
        print(f"kb check {cfg.kb}: {report['status']}", file=sys.stderr)
        return report
    if cfg.kb.exists() and not cfg.kb.is_dir():
        raise ConfigError(
            f"--kb {cfg.kb} is a file, not a knowledge-base directory; pass the directory"
        )
    # Only a directory that does not exist yet (or is empty) is a new, empty knowledge base;
    # one with files is opened, so that a deleted log or manifest is reported, not read as empty.
    if not cfg.kb.is_dir() or not any(cfg.kb.iterdir()):
        if cfg.action == "repair":
            raise FileNotFoundError(f"no knowledge base at {cfg.kb} to repair; check --kb")
        if cfg.action in ("show", "delete"):
            from corrigible.errors import UnknownEntryError

            raise UnknownEntryError(
                f"no knowledge base at {cfg.kb}, so no entry {cfg.entry_id!r}; pass --kb PATH or "
                "set CORRIGIBLE_KB"
            )
        print(f"note: no knowledge base at {cfg.kb} yet; it reads as empty", file=sys.stderr)
        result: Any = {"exported": 0, "path": str(cfg.out)} if cfg.action == "export" else []
        if cfg.action == "export":
            assert cfg.out is not None
            cfg.out.parent.mkdir(parents=True, exist_ok=True)
            cfg.out.write_text("")
        if cfg.action == "list" and not cfg.as_json:
            _print_table([], cfg.kb)
        else:
            print(json.dumps(result, indent=2))
        return result
    config = KnowledgeBaseConfig(on_corrupt="skip" if cfg.action == "repair" else "error")
    with KnowledgeBase.open(cfg.kb, read_only=not writes, config=config) as kb:
        if cfg.action == "list":
            entries = kb.list(kind=cfg.kind, active_only=not cfg.include_superseded)
            result = [_entry_json(entry, full=False) for entry in entries]
            if not cfg.as_json:
                _print_table(entries, cfg.kb)
                return result
        elif cfg.action == "show":
            assert cfg.entry_id is not None
            entry_id = kb.resolve_id(cfg.entry_id)
            result = _entry_json(kb.get(entry_id), full=True)
            result["lineage"] = [e.id for e in kb.lineage(entry_id)]
        elif cfg.action == "search":
            visual = None
            if cfg.image is not None:
                from corrigible.memory.visual_embedder import embed_crop

                visual = embed_crop(_read_crop(cfg.image), metres_per_pixel=cfg.metres_per_pixel)
            hits = kb.search(
                cfg.query or "",
                visual=visual,
                k=cfg.k,
                kind=cfg.kind,
                mode=cfg.mode,  # validated in KbConfig
            )
            result = [
                {**hit.to_trace(), "skill": hit.entry.skill, "params": hit.entry.params}
                for hit in hits
            ]
        elif cfg.action == "delete":
            assert cfg.entry_id is not None
            entry_id = kb.resolve_id(cfg.entry_id)
            kb.delete(entry_id)
            result = {"deleted": entry_id}
        elif cfg.action == "export":
            assert cfg.out is not None
            result = {"exported": kb.export(cfg.out), "path": str(cfg.out)}
        else:  # repair
            report = kb.open_report
            result = {
                "records": report.records,
                "skipped_lines": report.skipped_lines,
                "damaged": report.damaged,
                "missing": report.missing,
                "torn_tail_bytes": report.torn_tail_bytes,
                "unconfirmed_tail_bytes": report.unconfirmed_tail_bytes,
                "backup": None if report.backup is None else str(report.backup),
                "backups": [str(path) for path in report.backups],
                "messages": report.messages,
                "entries": len(kb),
            }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def _invoke(**fields: Any) -> Any:
    """Builds the config, runs it, and maps corrigible and file errors to exit status 2."""
    try:
        return run(KbConfig(**fields))
    except (CorrigibleError, OSError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr)
        raise typer.Exit(2) from exc


_KB_OPTION = typer.Option(
    _DEFAULT_KB, "--kb", envvar="CORRIGIBLE_KB", help="knowledge-base directory"
)


def register(app: typer.Typer) -> None:
    """Adds the `kb` verb and its sub-commands."""
    kb_app = typer.Typer(
        help="Inspect and edit the knowledge base of distilled corrections.",
        no_args_is_help=True,
    )

    @kb_app.command("list")
    def list_entries(
        kb: Path = _KB_OPTION,
        kind: str | None = typer.Option(None, help="plan_rule | preference | skill_params"),
        all_: bool = typer.Option(False, "--all", help="include superseded entries"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    ) -> None:
        """List entries (active ones unless --all)."""
        _invoke(action="list", kb=kb, kind=kind, include_superseded=all_, as_json=as_json)

    @kb_app.command("show")
    def show(
        entry_id: str = typer.Argument(..., metavar="ID", help="entry id or unique prefix"),
        kb: Path = _KB_OPTION,
    ) -> None:
        """Print one entry with its provenance and supersession lineage."""
        _invoke(action="show", kb=kb, entry_id=entry_id)

    @kb_app.command("search")
    def search(
        query: str = typer.Argument(..., help="task or object description"),
        kb: Path = _KB_OPTION,
        k: int = typer.Option(5, "--k", help="at most this many hits"),
        mode: str = typer.Option("text", help="text | text+visual | visual"),
        image: Path | None = typer.Option(None, help="RGB crop of the object, for visual modes"),
        metres_per_pixel: float | None = typer.Option(None, help="metric pixel size of the crop"),
        kind: str | None = typer.Option(None, help="plan_rule | preference | skill_params"),
    ) -> None:
        """Retrieve the entries that apply, each with the reason."""
        _invoke(
            action="search",
            kb=kb,
            query=query,
            k=k,
            mode=mode,
            image=image,
            metres_per_pixel=metres_per_pixel,
            kind=kind,
        )

    @kb_app.command("delete")
    def delete(
        entry_id: str = typer.Argument(..., metavar="ID", help="entry id or unique prefix"),
        kb: Path = _KB_OPTION,
    ) -> None:
        """Delete an entry (a durable tombstone)."""
        _invoke(action="delete", kb=kb, entry_id=entry_id)

    @kb_app.command("export")
    def export(
        out: Path = typer.Argument(..., metavar="PATH", help="JSONL file to write"),
        kb: Path = _KB_OPTION,
    ) -> None:
        """Write every entry (active and superseded) as JSON lines."""
        _invoke(action="export", kb=kb, out=out)

    @kb_app.command("repair")
    def repair(kb: Path = _KB_OPTION) -> None:
        """Keep every intact record of a damaged log; quarantine the damage to .corrupt files."""
        _invoke(action="repair", kb=kb)

    @kb_app.command("check")
    def check_dir(
        directory: Path | None = typer.Argument(
            None, metavar="[DIR]", help="knowledge-base directory (default: --kb)"
        ),
        kb: Path = _KB_OPTION,
    ) -> None:
        """Report damage without writing: exit 0 clean, 1 damage found, 2 unusable."""
        report = _invoke(action="check", kb=directory or kb)
        raise typer.Exit(report["exit_code"])

    app.add_typer(kb_app, name="kb")
