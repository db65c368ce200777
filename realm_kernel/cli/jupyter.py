"""What a Jupyter server started by the CLI needs: the environment that enables the realm
extension (and carries its token: never an argument, which every local user can read
through `ps`), and the run/ folder it serves.

Where it listens and which origins it accepts are Jupyter's own options; the realm
extension checks their final values inside the server (realm_kernel/server), before it
binds, so no spelling of them gets past the check."""

from __future__ import annotations

import os
from pathlib import Path

from ..store.paths import RealmPaths, resource_dir


def jupyter_env() -> dict[str, str]:
    """Environment for a Jupyter server with the realm extension enabled."""
    env = dict(os.environ)
    conf = str(resource_dir("jupyter-config"))
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (conf, env.get("JUPYTER_CONFIG_PATH", "")) if p)
    env["REALM_HOME"] = str(RealmPaths.at().home)
    return env


SECRET_TRAITS = ("token", "password", "hashed_password")


def jupyter_token(args: list[str]) -> str:
    """The token a Jupyter server started by the CLI gets through JUPYTER_TOKEN: the
    caller's JUPYTER_TOKEN, else a new one. A token or password among the arguments is
    refused (ValueError), in either of traitlets' spellings (`--X.token=T`, `--X.token T`)."""
    from ..services.launcher import new_token
    for a in args:
        name = a.split("=", 1)[0]
        if name.startswith("--") and name.rsplit(".", 1)[-1].lower() in SECRET_TRAITS:
            raise ValueError(f"{name} in the arguments: every local user can read them "
                             "(`ps`); set JUPYTER_TOKEN in the environment instead")
    return os.environ.get("JUPYTER_TOKEN") or new_token()


def run_folder(paths: RealmPaths) -> Path:
    """<home>/run/: what JupyterLab serves, with fresh copies of the tracked notebooks, so
    running them (and JupyterLab's autosave) never dirties the checkout. A copy the user
    changed is kept until the tracked notebook itself changes."""
    import shutil

    run = paths.home / "run"
    (run / "notebooks").mkdir(parents=True, exist_ok=True)
    for nb in sorted(resource_dir("notebooks").glob("*.ipynb")):  # the checkout's or the wheel's
        dest = run / "notebooks" / nb.name
        if not dest.exists() or dest.stat().st_mtime < nb.stat().st_mtime:
            shutil.copy2(nb, dest)
            os.utime(dest)  # newer than the source: copied once per change of the source
    return run
