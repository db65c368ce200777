"""What a Jupyter server started by the CLI needs: the environment that enables the realm
extension, and the run/ folder it serves."""

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
