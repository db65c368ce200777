"""Starting and stopping the realm (play, up, ps, down, the Tavern as a Panel app), where it
runs (hosts) and its backups."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ..hero_model import hub
from ..store.paths import RealmPaths
from .common import guarded, open_realm, plan_card, print_json, working
from .jupyter import jupyter_env, jupyter_token, run_folder

app = typer.Typer()


@app.command()
def hosts() -> None:
    """The host registry (hosts.toml), and whether the trainer is this machine."""
    reg = guarded(open_realm().hosts)
    print_json({"source": str(reg.source) if reg.source else None,
                "trainer_local": reg.is_trainer_local(),
                "hosts": {k: h.model_dump() for k, h in reg.hosts.items()}})


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def play(ctx: typer.Context, port: int = 8888, open_browser: bool = False,
         headless: bool = typer.Option(False, help="No JupyterLab: only the daemon and the "
                                       "Task Master, supervised by the Weaver, until Ctrl-C."),
         root_dir: Path = typer.Option(None, help="Folder JupyterLab serves (default: the "
                                       "realm's run/ folder with copies of the notebooks)."),
         detach: bool = typer.Option(False, "--detach", help="Start in the background, print "
                                     "where, and return (`realm ps`, `realm down`)."),
         hero: str = typer.Option(None, "--hero", help="The hero profile, kept in realm.toml "
                                  "([hero] profile): dio-mini (CPU) or qwen3-0.6b (bf16, batch "
                                  "sized to the card)."),
         vram_gb: float = typer.Option(None, "--vram-gb", help="Size a GPU profile for a card of "
                                       "this many GiB (default: CUDA device 0).")
         ) -> None:
    """Start the game: JupyterLab with the Tavern notebook, the daemon, the Task Master
    and dio-mini. From an empty realm the curriculum writes the first quests itself.

    Extra arguments go to JupyterLab; its token comes from JUPYTER_TOKEN (else a new
    one), never from an argument.
    Example: realm play --hero qwen3-0.6b --headless --detach"""
    plan_card(vram_gb)
    if hero is not None:
        _choose_hero(hero)
    if detach:
        raise typer.Exit(_play_detached(port, headless, root_dir, list(ctx.args)))
    from ..api import Realm
    from ..services.launcher import record_play
    from ..train.dio_mini import build_dio_mini

    realm = Realm()
    config = guarded(lambda: realm.config)
    typer.echo(config.resolved_profile.text())
    base_model = config.hero.base_model
    if base_model and hub.is_hub_id(base_model, realm.paths.home):
        try:  # downloaded once, in the foreground, so huggingface_hub's progress bars are seen
            typer.echo(f"Hero: {base_model} at {hub.fetch(base_model)}")
        except hub.HubModelMissing as e:  # the daemon waits and says so in the Tavern
            typer.echo(f"warning: {e}", err=True)
    if not base_model:
        if (realm.paths.dio_mini / "config.json").exists():
            typer.echo(f"Hero: dio-mini at {realm.paths.dio_mini}")
        else:
            with working(f"Building the hero, dio-mini, into {realm.paths.dio_mini}"):
                build_dio_mini(realm.paths.dio_mini)
    realm.ledger.ensure_views()
    log = os.environ.get("REALM_PLAY_LOG")
    if headless:
        record_play(realm.paths, "headless", log=Path(log) if log else None)
        raise typer.Exit(_play_headless(realm))
    env = jupyter_env()
    args = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
            f"--ServerApp.root_dir={root_dir or run_folder(realm.paths)}",
            "--LabApp.default_url=/lab/tree/notebooks/Tavern.ipynb"]
    if not open_browser:
        args.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and CI run as root
    args += ctx.args
    # Ours (or the caller's JUPYTER_TOKEN), so that `realm ps` can give the URL with it.
    env["JUPYTER_TOKEN"] = token = guarded(jupyter_token, ctx.args)
    info = record_play(realm.paths, "lab", port, token, Path(log) if log else None)
    typer.echo(f"Realm home: {realm.paths.home}\nStarting JupyterLab at {info['url']} "
               "(Ctrl-C to stop)...")
    os.execvpe(args[0], args, env)


def _choose_hero(name: str) -> None:
    """`--hero NAME` into realm.toml's [hero] profile (refused, by name, when unknown)."""
    from ..hero_model import profiles
    from ..store import settings
    try:
        profiles.check_name(name)
    except ValueError as e:
        typer.echo(f"error: --hero: {e}", err=True)
        raise typer.Exit(2) from e
    result = settings.save(RealmPaths.at().ensure(), {"hero.profile": name}, confirm=True)
    if not result["ok"]:
        typer.echo(f"error: realm.toml: {result.get('errors')}", err=True)
        raise typer.Exit(2)


def _play_detached(port: int, headless: bool, root_dir: Path | None, extra: list[str]) -> int:
    from ..services.launcher import start_detached
    args = [f"--port={port}"] + (["--headless"] if headless else [])
    args += [f"--root-dir={root_dir}"] if root_dir else []
    paths = RealmPaths.at().ensure()
    try:
        info = guarded(start_detached, paths, args + extra, headless)
    except RuntimeError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    typer.echo(f"The realm runs in the background (pid {info['pid']}, {info['mode']}).\n"
               f"Home: {paths.home}\n" + (f"Open: {info['url']}\n" if info.get("url") else "")
               + f"Log: {info['log']}\n`realm ps` shows it, `realm down` stops it.")
    return 0


@app.command()
def up(ctx: typer.Context, port: int = 8888,
       headless: bool = typer.Option(False, help="No JupyterLab: the daemon and the Task Master."),
       ) -> None:
    """Start the realm in the background (= realm play --detach) and print where.

    Example: realm up --headless"""
    raise typer.Exit(_play_detached(port, headless, None, []))


@app.command()
def ps() -> None:
    """What runs for this realm: pids, ports, URLs with their token, logs.

    Example: realm ps"""
    from ..services.launcher import ps as list_processes
    print_json(list_processes(RealmPaths.at()))


@app.command()
def down(timeout: float = typer.Option(None, help="seconds to wait (default: the daemon's "
                                       "stop_timeout_s + 60)")) -> None:
    """Stop this realm cleanly from any shell: the daemon at a step boundary with a
    checkpoint, then the Task Master, then JupyterLab.

    Example: realm down"""
    from ..services.launcher import down as stop_realm
    result = stop_realm(RealmPaths.at(), timeout)
    print_json(result)
    if result["still_running"]:
        raise typer.Exit(1)


@app.command()
def backup(dest: Path = typer.Argument(None, help="a new folder (default: <home>/backups/<time>)"),
           all_checkpoints: bool = typer.Option(False, "--all-checkpoints",
                                                help="every complete checkpoint, not only the champion")
           ) -> None:
    """A consistent snapshot of the realm (ledger, realm.toml, hosts, the champion's
    weights), safe while DIO trains.

    Example: realm backup /mnt/nas/realm-backup --all-checkpoints"""
    from ..api import BackupError
    try:
        print_json(guarded(open_realm().backup, dest, all_checkpoints))
    except BackupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


@app.command()
def restore(src: Path) -> None:
    """Bring the realm back from a backup (`realm down` first); what it replaces is kept
    in backups/auto/<time>-pre-restore/.

    Example: realm restore /mnt/nas/realm-backup"""
    from ..api import BackupError
    try:
        print_json(guarded(open_realm().restore, src))
    except BackupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def _play_headless(realm) -> int:
    """The Weaver's services (daemon, Task Master) in the foreground, without Jupyter."""
    import logging
    import signal
    import threading

    from ..services.weaver import Weaver
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    weaver = Weaver(realm.paths, logging.getLogger("realm.play"), ledger=realm.ledger)
    typer.echo(f"Realm home: {realm.paths.home}\nDaemon and Task Master running (Ctrl-C to stop)...")
    weaver.start()
    try:
        done.wait()
    finally:
        logging.getLogger("realm.play").info("stopping: the daemon first, then the Task Master")
        weaver.stop()
    return 0


@app.command()
def tavern(address: str = typer.Option("127.0.0.1", help="Address to listen on."),
           port: int = 5006,
           basic_auth: str = typer.Option(None, envvar="REALM_TAVERN_PASSWORD",
                                          help="A JSON file of user: password, or a password "
                                          "(better in REALM_TAVERN_PASSWORD: arguments are "
                                          "readable by every local user)."),
           user: str = typer.Option(None, help="The user name a single --basic-auth password "
                                    "logs in (default: this account's name)."),
           oauth_provider: str = typer.Option(None, help="Panel OAuth provider (github, google, ...)."),
           oauth_key: str = typer.Option(None, help="The OAuth client id."),
           oauth_secret: str = typer.Option(None, envvar="REALM_TAVERN_OAUTH_SECRET",
                                            help="The OAuth client secret (better in "
                                            "REALM_TAVERN_OAUTH_SECRET)."),
           oauth_redirect_uri: str = typer.Option(None, help="The OAuth redirect URI."),
           cookie_secret: str = typer.Option(None, envvar="REALM_TAVERN_COOKIE_SECRET",
                                             help="Default: a fresh random secret."),
           allow_websocket_origin: list[str] = typer.Option([], help="host[:port] browsers use.")
           ) -> None:
    """The Tavern as a Panel app, a route per page (/, /quests, /oracle, /vault, /settings,
    /scheduler, /guild); 127.0.0.1 unless exposed with a login.

    Another address, or a websocket origin of another host, needs --basic-auth or
    --oauth-provider. Unknown options are errors (nothing is passed through unchecked)."""
    from ..services.tavern_server import ExposureError, TavernServer

    server = TavernServer(address, port, basic_auth, user, oauth_provider, oauth_key,
                          oauth_secret, oauth_redirect_uri, cookie_secret,
                          list(allow_websocket_origin))
    try:
        server = server.check()
    except ExposureError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    args, env = server.launch()
    env["REALM_HOME"] = str(RealmPaths.at().home)
    typer.echo(f"The Tavern: {server.describe()}", err=True)
    os.execvpe(args[0], args, env)
