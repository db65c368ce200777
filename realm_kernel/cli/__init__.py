"""`realm`: the command line, one module per noun of the game. Commands go through
realm_kernel.api.Realm (`common.open_realm`); those that start a process (the daemon, play,
the Tavern, the Task Master, `oracle serve`, `train`, `build-dio-mini`) import their service
where they start it, inside the command, so `realm --help` stays fast. docs/architecture.md
lists every import below the facade and why."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from . import cluster, hero, ledger, lifecycle, oracle, progress, quests, skills, tasks, training, vault

app = typer.Typer(help="Realm of Training: fine-tune DIO like the hero of an idle RPG.",
                  no_args_is_help=True, add_completion=False)
# Without a name a module's commands sit at the top level; this order is `realm --help`'s.
for commands in (training.app, progress.app, lifecycle.app):
    app.add_typer(commands)
app.add_typer(quests.app, name="quest")
app.add_typer(ledger.app, name="ledger")
app.add_typer(skills.app, name="skills")
app.add_typer(vault.app, name="vault")
app.add_typer(oracle.app, name="oracle")
app.add_typer(hero.app, name="hero")
app.add_typer(tasks.app, name="tasks")
app.add_typer(cluster.app, name="cluster")


@app.callback()
def _home(home: Path = typer.Option(None, "--home", envvar="REALM_HOME",
                                    help="Realm home (default: the checkout, else ~/.realm).")):
    if home:
        os.environ["REALM_HOME"] = str(home.expanduser().resolve())
