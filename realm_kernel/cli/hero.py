"""`realm hero`: the hero profile in force."""

from __future__ import annotations

import json

import typer

from .common import guarded, open_realm, plan_card

app = typer.Typer(help="The hero: its profile (training defaults sized for it).", no_args_is_help=True)


@app.command("profile")
def hero_profile(name: str = typer.Argument(None, help="Show this profile as it would resolve here "
                                            "(default: the realm's own)."),
                 vram_gb: float = typer.Option(None, "--vram-gb", help="Size for a card of this many "
                                               "GiB (default: CUDA device 0)."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """The hero profile in force: each training default, its value and where it came from
    (the profile's recipe or measurement, realm.toml, or the environment).

    Example: realm hero profile qwen3-0.6b --vram-gb 24"""
    plan_card(vram_gb)
    res = guarded(open_realm().settings.profile, name)
    typer.echo(json.dumps(res.as_dict(), indent=2, default=str) if as_json else res.text())
