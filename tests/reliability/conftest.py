"""Module-scoped realms for the reliability suite: one realm home, one daemon and one
JupyterLab serve many cases (each case leaves the realm as it found it or is checked
in order), so the suite stays within its CI budget."""

from __future__ import annotations

import shutil
import sys

import pytest

from realm_kernel.store.paths import REPO_ROOT, RealmPaths

from ..conftest import Procs, child_env, free_port, wait_for

TOKEN = "realm-reliability-token"


def make_home(tmp_path_factory, dio_mini_dir, toml: str) -> RealmPaths:
    paths = RealmPaths.at(tmp_path_factory.mktemp("realm")).ensure()
    shutil.copytree(dio_mini_dir, paths.dio_mini)
    paths.config_file.write_text(toml)
    return paths


@pytest.fixture(scope="module")
def module_procs(tmp_path_factory):
    p = Procs(tmp_path_factory.mktemp("logs"))
    yield p
    p.stop_all()


def start_lab(procs: Procs, paths: RealmPaths, runtime, **extra_env):
    """A real JupyterLab on 127.0.0.1 with the realm extension, the Weaver off (the test
    runs its own daemon)."""
    import requests
    port = free_port()
    env = {**child_env(paths.home), "REALM_WEAVER": "0", **extra_env}
    env["JUPYTER_CONFIG_PATH"] = str(REPO_ROOT / "jupyter-config")
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    argv = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
            "--allow-root", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={paths.home}"]
    proc = procs.start("lab", argv, env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/api/status", headers=auth(), timeout=2).ok, 120,
             "JupyterLab to answer")
    return proc, base


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"token {token}"}
