"""`realm quest`: training files in the inbox and the queue."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import guarded, open_realm, print_json, working

app = typer.Typer(help="Quests: training files in the inbox.", no_args_is_help=True)


@app.command("add")
def quest_add(file: Path, priority: str = typer.Option(None, "--priority",
                                                       help="high | normal | low")) -> None:
    """Validate FILE and drop it into the inbox."""
    from ..api import QuestError
    try:
        print_json(open_realm().quests.add(file, priority=priority))
    except (QuestError, ValueError, OSError) as e:
        typer.echo(f"rejected: {e}", err=True)
        raise typer.Exit(2) from e


@app.command("import")
def quest_import(source: str = typer.Argument(..., help="a datasets save_to_disk folder, or a hub "
                                              "dataset id in the local HF cache"),
                 split: str = typer.Option(None, help="the split (default: train, or the only one)"),
                 name: str = typer.Option(None, help="the quest's file name (.jsonl)"),
                 priority: str = typer.Option(None, "--priority", help="high | normal | low")) -> None:
    """Convert a HF dataset (messages, prompt/completion, ShareGPT or Alpaca rows) into a quest."""
    from ..api import QuestError
    typer.echo(f"Reading {source}{f' ({split})' if split else ''}...", err=True)
    try:
        print_json(open_realm().quests.import_dataset(source, split, name, priority))
    except (QuestError, ValueError, OSError) as e:
        typer.echo(f"rejected: {e}", err=True)
        raise typer.Exit(2) from e


@app.command("validate")
def quest_validate(file: Path,
                   depth: str = typer.Option(None, "--depth",
                                             help="quick | standard | deep (default: realm.toml)"),
                   level: str = typer.Option(None, "--level", hidden=True),  # the old name of --depth
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Check FILE without queueing it: the report the daemon would give."""
    report = guarded(open_realm().quests.validate, file, depth or level)
    typer.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.render())
    raise typer.Exit(0 if report.ok else 2)


@app.command("priority")
def quest_priority(name: str, priority: str) -> None:
    """Move a waiting quest to another priority (high | normal | low)."""
    print_json(guarded(open_realm().quests.set_priority, name, priority))


@app.command("move")
def quest_move(name: str, position: int) -> None:
    """Reorder a waiting quest within its priority (0 = next)."""
    print_json(guarded(open_realm().quests.move, name, position))


@app.command("remove")
def quest_remove(name: str) -> None:
    """Delete a waiting, failed or completed quest."""
    print_json(guarded(open_realm().quests.remove, name))


@app.command("generate")
def quest_generate(skill: str, level: int = typer.Option(1, "--level"),
                   count: int = typer.Option(500, "--count"),
                   seed: int = typer.Option(None, "--seed")) -> None:
    """Generate a skill quest (e.g. `realm quest generate bin --level 1 --count 500`)."""
    from ..api import SkillError
    try:
        with working(f"Generating {count} {skill.upper()} level {level} problems"):
            path = open_realm().quests.generate(skill, level, count, seed)
        typer.echo(path)
    except SkillError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e


@app.command("list")
def quest_list() -> None:
    """The queue by state and priority."""
    print_json(open_realm().quests.queue())
