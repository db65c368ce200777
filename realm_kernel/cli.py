"""`realm`: the command line. Every command goes through realm_kernel.api.Realm."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from .paths import REPO_ROOT, RealmPaths

app = typer.Typer(help="Realm of Training: fine-tune DIO like the hero of an idle RPG.",
                  no_args_is_help=True, add_completion=False)
# ~1000 steps at the default batch size: DIO fights for a couple of minutes and reaches
# Level 1 (Level = steps // 1000) on the seed quest alone.
SEED_QUEST_EXAMPLES = 16500

quest_app = typer.Typer(help="Quests: training files in the inbox.", no_args_is_help=True)
ledger_app = typer.Typer(help="The DuckDB ledger.", no_args_is_help=True)
vault_app = typer.Typer(help="The VaultKeeper: assets across zones.", no_args_is_help=True)
app.add_typer(quest_app, name="quest")
app.add_typer(ledger_app, name="ledger")
app.add_typer(vault_app, name="vault")


def _realm():
    from .api import Realm
    return Realm()


def _print(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _guarded(fn, *args, **kwargs):
    """Run a Realm call; a known user error exits 2 with its message, not a traceback."""
    import duckdb

    from .config import ConfigError
    from .quests import QuestError
    from .vault import VaultError
    try:
        return fn(*args, **kwargs)
    except (QuestError, VaultError, LookupError, ValueError, ConfigError, OSError,
            duckdb.Error) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


@app.callback()
def _home(home: Path = typer.Option(None, "--home", envvar="REALM_HOME",
                                    help="Realm home (default: the checkout, else ~/.realm).")):
    if home:
        os.environ["REALM_HOME"] = str(home.expanduser().resolve())


@app.command("build-dio-mini")
def build_dio_mini_cmd(force: bool = False, seed: int = 0) -> None:
    """Build the CPU demo hero into <home>/models/dio-mini."""
    from .dio_mini import build_dio_mini
    paths = RealmPaths.at().ensure()
    typer.echo(f"dio-mini at {build_dio_mini(paths.dio_mini, seed=seed, force=force)}")


@app.command()
def daemon() -> None:
    """Run the training daemon in the foreground."""
    from .daemon import main
    raise typer.Exit(main(["--home", str(RealmPaths.at().home)]))


@app.command()
def status() -> None:
    """Hero stats and the battle status."""
    r = _realm()
    _print({"hero": r.hero(), "training": r.training_status(), "health": r.health()})


@app.command()
def pause() -> None:
    """Pause the battle at the next step boundary."""
    _print(_realm().control("pause"))


@app.command()
def resume() -> None:
    """Resume after pause or stop."""
    _print(_realm().control("resume"))


@app.command()
def stop() -> None:
    """Save a checkpoint and stop at the next step boundary; the quest goes back to its queue."""
    _print(_realm().control("stop"))


@app.command()
def skip() -> None:
    """Save a checkpoint and set the quest in training aside (failed/, reason 'skipped')."""
    _print(_realm().control("skip"))


@quest_app.command("add")
def quest_add(file: Path, priority: str = typer.Option(None, "--priority",
                                                       help="high | normal | low")) -> None:
    """Validate FILE and drop it into the inbox."""
    from .quests import QuestError
    try:
        _print(_realm().add_quest(file, priority=priority))
    except (QuestError, ValueError, OSError) as e:
        typer.echo(f"rejected: {e}", err=True)
        raise typer.Exit(2) from e


@quest_app.command("validate")
def quest_validate(file: Path,
                   level: str = typer.Option(None, "--level",
                                             help="quick | standard | deep (default: realm.toml)"),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Check FILE without queueing it: the report the daemon would give."""
    report = _guarded(_realm().validate_quest, file, level)
    typer.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.render())
    raise typer.Exit(0 if report.ok else 2)


@quest_app.command("priority")
def quest_priority(name: str, priority: str) -> None:
    """Move a waiting quest to another priority (high | normal | low)."""
    _print(_guarded(_realm().set_quest_priority, name, priority))


@quest_app.command("move")
def quest_move(name: str, position: int) -> None:
    """Reorder a waiting quest within its priority (0 = next)."""
    _print(_guarded(_realm().reorder_quest, name, position))


@quest_app.command("remove")
def quest_remove(name: str) -> None:
    """Delete a waiting, failed or completed quest."""
    _print(_guarded(_realm().delete_quest, name))


@quest_app.command("generate")
def quest_generate(skill: str, level: int = typer.Option(1, "--level"),
                   count: int = typer.Option(500, "--count"),
                   seed: int = typer.Option(None, "--seed")) -> None:
    """Generate a skill quest (e.g. `realm quest generate bin --level 1 --count 500`)."""
    from skills import SkillError
    try:
        typer.echo(_realm().generate_quest(skill, level, count, seed))
    except SkillError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e


@quest_app.command("list")
def quest_list() -> None:
    """The queue by state and priority."""
    _print(_realm().queue())


@ledger_app.command("sql")
def ledger_sql(query: str) -> None:
    """Run SQL over the ledger views (metrics, checkpoints, quests, events, evals, ...)."""
    import duckdb
    try:
        _print(_realm().sql(query))
    except duckdb.Error as e:
        typer.echo(f"SQL error: {e}", err=True)
        raise typer.Exit(2) from e


@ledger_app.command("checkpoints")
def ledger_checkpoints(limit: int = typer.Option(20, "--limit"),
                       skill: str = typer.Option(None, "--skill")) -> None:
    """The checkpoint ledger, newest first."""
    _print([r.as_dict() for r in _realm().checkpoints.list(limit, skill)])


@ledger_app.command("get")
def ledger_get(step: str) -> None:
    """One checkpoint by step (or any checkpoint name)."""
    rec = _realm().checkpoints.get(step)
    if rec is None:
        typer.echo(f"no checkpoint at {step}", err=True)
        raise typer.Exit(2)
    _print(rec.as_dict())


@ledger_app.command("best")
def ledger_best(metric: str = typer.Option("loss", "--metric")) -> None:
    """The best checkpoint by loss | val_loss | accuracy."""
    rec = _guarded(_realm().checkpoints.best, metric)
    _print(rec.as_dict() if rec else None)


@ledger_app.command("summary")
def ledger_summary() -> None:
    _print(_realm().checkpoints.summary())


@vault_app.command("scan")
def vault_scan(zone: str = typer.Option("local", "--zone")) -> None:
    """Discover checkpoints, models, data and configs in a zone."""
    _print(_guarded(_realm().vault.scan, zone))


@vault_app.command("locate")
def vault_locate(asset_id: str) -> None:
    _print(_guarded(_realm().vault.locate, asset_id).as_dict())


@vault_app.command("fetch")
def vault_fetch(asset_id: str) -> None:
    """Copy an asset into the realm home from the best zone that has it."""
    typer.echo(_guarded(_realm().vault.fetch, asset_id))


@vault_app.command("transfer")
def vault_transfer(asset_id: str, to_zone: str,
                   from_zone: str = typer.Option(None, "--from")) -> None:
    _print(_guarded(_realm().vault.transfer, asset_id, to_zone, from_zone).as_dict())


@vault_app.command("search")
def vault_search(type_: str = typer.Option(None, "--type"), q: str = typer.Option(None, "--q")) -> None:
    _print(_guarded(_realm().vault.search, type_, q))


@vault_app.command("stats")
def vault_stats() -> None:
    _print(_realm().vault.stats())


@vault_app.command("zones")
def vault_zones() -> None:
    _print(_realm().vault.zones())


@vault_app.command("add-zone")
def vault_add_zone(zone_id: str, url: str, detail: str = "") -> None:
    """A local folder or an fsspec URL (file://, s3://, ssh://, ...)."""
    _print(_guarded(_realm().vault.add_zone, zone_id, url, detail))


@vault_app.command("retention")
def vault_retention(apply: bool = typer.Option(False, "--apply",
                                               help="delete; without it, a dry run")) -> None:
    """Keep best N + latest N + every Kth checkpoint, never the champion or the one in use."""
    _print(_realm().vault.retention(dry_run=not apply))


@app.command()
def champion(step: str = typer.Argument(None, help="promote this checkpoint step")) -> None:
    """Show the champion, or promote the checkpoint at STEP."""
    r = _realm()
    _print(_guarded(r.promote, step) if step is not None else r.champion())


@app.command()
def hosts() -> None:
    """The host registry (hosts.toml), and whether the trainer is this machine."""
    from .hosts import HostRegistry
    reg = _guarded(HostRegistry.load)
    _print({"source": str(reg.source) if reg.source else None,
            "trainer_local": reg.is_trainer_local(),
            "hosts": {k: h.model_dump() for k, h in reg.hosts.items()}})


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def play(ctx: typer.Context, port: int = 8888, seed_quest: bool = True,
         open_browser: bool = False,
         root_dir: Path = typer.Option(REPO_ROOT, help="Folder JupyterLab serves (holds notebooks/).")
         ) -> None:
    """Start the game: JupyterLab with the Tavern notebook, the daemon and dio-mini.

    Extra arguments go to JupyterLab (e.g. --IdentityProvider.token=...)."""
    from .api import Realm
    from .dio_mini import build_dio_mini

    realm = Realm()
    if not realm.config.hero.base_model:
        build_dio_mini(realm.paths.dio_mini)
    realm.ledger.ensure_views()
    if seed_quest and not realm.sql("SELECT 1 FROM quests LIMIT 1") and not any(
            realm.paths.inbox.glob("*.jsonl")):
        seeded = realm.generate_quest("bin", 1, SEED_QUEST_EXAMPLES, seed=0)
        typer.echo(f"Seeded the realm with {seeded.name}")
    env = jupyter_env()
    args = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
            f"--ServerApp.root_dir={root_dir}",
            "--LabApp.default_url=/lab/tree/notebooks/Tavern.ipynb"]
    if not open_browser:
        args.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and CI run as root
    args += ctx.args
    typer.echo(f"Realm home: {realm.paths.home}\nStarting JupyterLab (Ctrl-C to stop)...")
    os.execvpe(args[0], args, env)


def jupyter_env() -> dict[str, str]:
    """Environment for a Jupyter server with the realm extension enabled."""
    env = dict(os.environ)
    conf = str(REPO_ROOT / "jupyter-config")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (conf, env.get("JUPYTER_CONFIG_PATH", "")) if p)
    env["REALM_HOME"] = str(RealmPaths.at().home)
    return env


if __name__ == "__main__":
    app()
