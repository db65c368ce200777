"""`realm oracle`: chat with a checkpoint by exact step, and the Oracle pool."""

from __future__ import annotations

import os
import sys

import typer

from ..store.paths import RealmPaths
from .common import guarded, open_realm, print_json
from .jupyter import jupyter_env, jupyter_token

app = typer.Typer(help="The Oracle: chat with a checkpoint by exact step.", no_args_is_help=True)


@app.command("chat")
def oracle_chat(step: int = typer.Option(..., "--step", help="Exact step (0 = the base model)."),
                message: str = typer.Option(None, "--message", "-m", help="One message; else read lines."),
                host: str = typer.Option(None, "--host", help="An inference host of hosts.toml."),
                max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
                temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy.")) -> None:
    """Chat with one checkpoint (loaded into this process, or served by --host); every
    answer ends with the name and path of the model that gave it."""
    from ..api import ModelNotLoaded, OracleError, RemoteError, UnknownCheckpoint
    oracle = open_realm().oracle
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature}
    try:
        loaded = oracle.load(step, host)
    except (ModelNotLoaded, UnknownCheckpoint, OracleError, RemoteError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"🔮 {loaded['model']} ({loaded['model_path']}) on {loaded['host']}", err=True)
    history: list[dict] = []
    lines = [message] if message is not None else (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        done: dict = {}
        for ev in oracle.stream(step, messages=history, host=host, sampling=sampling):
            if ev["type"] == "token":
                typer.echo(ev["text"], nl=False)
            elif ev["type"] == "done":
                done = ev
        typer.echo("")
        typer.echo(f"[model: {done['model']} | path: {done['model_path']} | "
                   f"{done['usage']['completion_tokens'] if done.get('usage') else '?'} tokens]", err=True)
        history.append({"role": "assistant", "content": done["content"]})


@app.command("status")
def oracle_status() -> None:
    """What the realm's Oracle pool really holds (its owner's, or none), and what the
    inference hosts of hosts.toml serve."""
    print_json(open_realm().oracle.status())


@app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def oracle_serve(ctx: typer.Context, port: int = 8890) -> None:
    """Own the realm's Oracle pool without JupyterLab: a bare Jupyter server with the realm
    API on 127.0.0.1 (no daemon, no Task Master), so the Panel app, notebooks and the CLI
    share its models. JupyterLab under `realm play` does this itself.

    Example: realm oracle serve --port 8890"""
    paths = RealmPaths.at().ensure()
    args = [sys.executable, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
            f"--ServerApp.root_dir={paths.home}", *ctx.args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    env = {**jupyter_env(), "REALM_WEAVER": "0", "JUPYTER_TOKEN": guarded(jupyter_token, ctx.args)}
    typer.echo(f"Realm home: {paths.home}\nServing the realm's Oracle pool on 127.0.0.1:{port} "
               f"(advertised in {paths.oracle_owner}; Ctrl-C to stop)...")
    os.execvpe(args[0], args, env)


@app.command("checkpoints")
def oracle_checkpoints() -> None:
    """Every step the Oracle can load: 0 (the base model) and the ledger's checkpoints."""
    print_json(open_realm().oracle.checkpoints())
