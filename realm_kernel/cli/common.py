"""What every command module shares: the one `Realm` per call, JSON on stdout, progress
on stderr, and known user errors as exit 2 instead of a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..api import Realm


def open_realm() -> Realm:
    """The `Realm` of the home `--home` chose; imported here, not at the top, so `realm --help`
    stays fast."""
    from ..api import Realm
    return Realm()


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def working(what: str) -> Iterator[None]:
    """Say what the CLI is doing (on stderr, so stdout stays data), a spinner while it
    runs on a terminal, and how long it took."""
    import time

    from rich.console import Console
    typer.echo(f"{what}...", err=True)
    t0 = time.monotonic()
    with Console(stderr=True).status(what):
        yield
    typer.echo(f"{what}: done in {time.monotonic() - t0:.1f} s", err=True)


def guarded(fn, *args, **kwargs):
    """Run a Realm call; a known user error exits 2 with its message, not a traceback."""
    import duckdb

    from ..api import ConfigError, QuestError, VaultError
    try:
        return fn(*args, **kwargs)
    except (QuestError, VaultError, LookupError, ValueError, ConfigError, OSError,
            duckdb.Error) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def plan_card(vram_gb: float | None) -> None:
    """--vram-gb: size GPU profiles for a card of that size, here and in what this starts."""
    if vram_gb is not None:
        os.environ["REALM_HERO__VRAM_GB"] = str(vram_gb)
