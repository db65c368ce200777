"""The game's standing: the curriculum per skill and the champion checkpoint."""

from __future__ import annotations

import typer

from .common import guarded, open_realm, print_json

app = typer.Typer()


@app.command()
def curriculum() -> None:
    """Per skill: level, recent evals at it, review levels, priority."""
    print_json(open_realm().skills.curriculum())


@app.command()
def champion(step: str = typer.Argument(None, help="promote this checkpoint step")) -> None:
    """Show the champion, or promote the checkpoint at STEP."""
    r = open_realm()
    print_json(guarded(r.checkpoints.promote, step) if step is not None else r.checkpoints.champion())
