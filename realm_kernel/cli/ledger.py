"""`realm ledger`: SQL over the ledger views and the checkpoint ledger."""

from __future__ import annotations

import typer

from .common import guarded, open_realm, print_json

app = typer.Typer(help="The DuckDB ledger.", no_args_is_help=True)


@app.command("sql")
def ledger_sql(query: str,
               unsafe: bool = typer.Option(
                   False, "--unsafe",
                   help="Also allow writes, files outside the ledger and ATTACH.")) -> None:
    """Run SQL over the ledger views (metrics, checkpoints, quests, events, evals, ...).
    Read-only over the ledger unless --unsafe is typed."""
    import duckdb

    from ..store.ledger import UnsafeQuery
    if unsafe:
        typer.echo("--unsafe: this statement may write files, read any file the account "
                   "can and ATTACH databases", err=True)
    try:
        print_json(open_realm().sql(query, unsafe=unsafe))
    except UnsafeQuery as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    except duckdb.Error as e:
        typer.echo(f"SQL error: {e}", err=True)
        raise typer.Exit(2) from e


@app.command("checkpoints")
def ledger_checkpoints(limit: int = typer.Option(20, "--limit"),
                       skill: str = typer.Option(None, "--skill")) -> None:
    """The checkpoint ledger, newest first."""
    print_json([r.as_dict() for r in open_realm().checkpoints.list(limit, skill)])


@app.command("get")
def ledger_get(step: str) -> None:
    """One checkpoint by step (or any checkpoint name)."""
    rec = open_realm().checkpoints.get(step)
    if rec is None:
        typer.echo(f"no checkpoint at {step}", err=True)
        raise typer.Exit(2)
    print_json(rec.as_dict())


@app.command("best")
def ledger_best(metric: str = typer.Option("loss", "--metric")) -> None:
    """The best checkpoint by loss | val_loss | accuracy."""
    rec = guarded(open_realm().checkpoints.best, metric)
    print_json(rec.as_dict() if rec else None)


@app.command("summary")
def ledger_summary() -> None:
    print_json(open_realm().checkpoints.summary())
