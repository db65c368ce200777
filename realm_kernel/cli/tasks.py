"""`realm tasks`: the Task Master's pipeline notebooks."""

from __future__ import annotations

import json

import typer

from ..store.paths import RealmPaths
from .common import guarded, open_realm, print_json

app = typer.Typer(help="The Task Master: pipeline notebooks run when idle.", no_args_is_help=True)


def _task_line(t: dict) -> str:
    state = "on " if t["enabled"] else "off"
    last = f"{t['last_status']} {t['last_run']}" if t["last_run"] else "never run"
    return (f"{t['priority']:>3}  {state} {t['task_id']:<22} {t['resource']:<9} "
            f"cooldown {t['cooldown_s']:>6.0f} s  {last}")


@app.command("list")
def tasks_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every task: priority, enabled, resource, cooldown, last run."""
    tasks = open_realm().tasks.list()
    if as_json:
        print_json(tasks)
    else:
        for t in tasks:
            typer.echo(_task_line(t))


@app.command("available")
def tasks_available() -> None:
    """Which tasks may run now, and why the others may not."""
    for t in open_realm().tasks.list(check_work=True):
        why = "READY: " + t.get("work", "") if t["available"] else t["why_not"]
        typer.echo(f"{_task_line(t)}\n       {why}")


@app.command("status")
def tasks_status() -> None:
    """The Task Master process, the GPU as NVML sees it, and the eval queue."""
    r = open_realm()
    print_json({"taskmaster": r.tasks.status(), "eval_queue": len(r.checkpoints.eval_queue()),
                "curriculum": r.skills.curriculum()})


@app.command("run")
def tasks_run(task_id: str, queue: bool = typer.Option(
        False, "--queue", help="hand it to the running Task Master instead of running it here")) -> None:
    """Run one task now (here, in the foreground), or --queue it for the Task Master."""
    r = open_realm()
    if queue:
        print_json(guarded(r.tasks.run, task_id))
        return
    from ..services.taskmaster import TaskMaster
    tm = TaskMaster(r.paths.home)
    tm.reload_config()
    result = guarded(tm.run, task_id, "realm tasks run")
    print_json(result)
    if result["status"] != "done":
        raise typer.Exit(1)


@app.command("once")
def tasks_once() -> None:
    """Run the highest-priority available task once (nothing when none is available)."""
    from ..services.taskmaster import TaskMaster
    result = TaskMaster(RealmPaths.at().home).once()
    print_json(result or {"ran": None, "detail": "no task is available"})


@app.command("daemon")
def tasks_daemon() -> None:
    """Run the Task Master loop in the foreground (the Weaver runs it beside the daemon)."""
    from ..services.taskmaster import main
    raise typer.Exit(main(["--home", str(RealmPaths.at().home)]))


@app.command("set")
def tasks_set(task_id: str, enabled: bool = typer.Option(None, "--enabled/--disabled"),
              priority: int = typer.Option(None), cooldown_s: float = typer.Option(None),
              param: list[str] = typer.Option(None, "--param", help="A notebook parameter, "
                                              "NAME=VALUE (JSON value), e.g. --param count=80")) -> None:
    """Change a task's enabled flag, priority, cooldown or notebook parameters (kept in
    tasks/settings.json), e.g. `realm tasks set sparring_bin --param count=80`."""
    print_json(guarded(open_realm().tasks.set, task_id, enabled=enabled, priority=priority,
                       cooldown_s=cooldown_s, parameters=_params(param) if param else None))


def _params(items: list[str]) -> dict:
    """NAME=VALUE pairs; a value is read as JSON (80, 0.9, true) or else kept as text."""
    out = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            typer.echo(f"error: --param {item!r}: expected NAME=VALUE", err=True)
            raise typer.Exit(2)
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out
