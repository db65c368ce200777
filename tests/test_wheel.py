"""The wheel plays: built from the working tree, installed into a fresh venv outside the
checkout, it enables its Jupyter server extension for a plain `jupyter` and runs
`realm play --headless` from an empty realm until a quest trains and an eval is recorded.

The fresh venv gets the wheel alone (`--no-deps --no-index`); its third-party
dependencies come from this test venv's site-packages through a .pth path line (no
network at test time). A path line does not run that folder's own .pth files, so the
checkout's editable install stays invisible: every realm module is the wheel's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import duckdb
import pytest

from .helpers import REPO, TEST_TOML, Procs, wait_for

pytestmark = pytest.mark.slow

# The tests' fast training, with the Task Master on (it runs the wheel's eval pipeline).
PLAY_TOML = TEST_TOML.replace("save_steps = 10", "save_steps = 5").replace(
    "enabled = false", "enabled = true") + "\n[curriculum]\nquest_examples = 80\n"


def build_wheel(dest: Path) -> Path:
    """A wheel of the tracked and untracked-but-not-ignored files (a copy: the build
    never writes into the checkout)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    src = dest / "src"
    src.mkdir(parents=True)
    with tarfile.open(dest / "src.tar", "w") as tar:
        for f in files:
            if (REPO / f).is_file():
                tar.add(REPO / f, arcname=f)
    with tarfile.open(dest / "src.tar") as tar:
        tar.extractall(src, filter="data")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dest / "dist"), str(src)], check=True, capture_output=True)
    return next((dest / "dist").glob("realm_of_training-*.whl"))


def fresh_venv(where: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    py = where / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_realm_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    return py


def test_wheel_installs_anywhere_and_plays(tmp_path):
    wheel = build_wheel(tmp_path / "build")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("realm_of_training-")}
    assert tops == {"realm_kernel", "realm_widgets", "realm_skills"}, tops  # no generic names
    for data in ("realm_kernel/pipelines/eval.ipynb", "realm_kernel/notebooks/Tavern.ipynb",
                 "realm_kernel/jupyter_config/jupyter_server_config.d/realm_kernel.json",
                 "realm_of_training-0.1.0.data/data/etc/jupyter/jupyter_server_config.d/realm_kernel.json"):
        assert data in names, data

    py = fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"  # not the checkout: nothing may be read from it
    work.mkdir()
    env = {"PATH": f"{py.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "REALM_HOME": str(work / "realm"), "JUPYTER_PLATFORM_DIRS": "1"}
    where = subprocess.run([str(py), "-c", "import json, realm_kernel, realm_widgets, realm_skills;"
                            "from realm_kernel.services.taskmaster import PIPELINES;"
                            "print(json.dumps([realm_kernel.__file__, realm_widgets.__file__,"
                            "realm_skills.__file__, str(PIPELINES)]))"],
                           cwd=work, env=env, check=True, capture_output=True, text=True)
    for path in json.loads(where.stdout):
        assert path.startswith(str(tmp_path / "venv")), path

    # A plain `jupyter server` in that venv has the extension enabled (data_files config).
    listed = subprocess.run([str(py), "-m", "jupyter_server", "extension", "list"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    out = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # no colours
    assert f"{tmp_path / 'venv'}/etc/jupyter" in out, out
    assert re.search(r"realm_kernel\.server enabled\s+- Validating realm_kernel\.server\.\.\.\s+"
                     r"realm_kernel\.server\s+OK", out), out

    home = work / "realm"
    home.mkdir()
    (home / "realm.toml").write_text(PLAY_TOML)
    procs = Procs(tmp_path)
    try:
        proc = procs.start("play", [str(py.parent / "realm"), "play", "--headless"], env, cwd=work)

        def count(sql: str) -> int:
            assert proc.poll() is None, proc.log_path.read_text()[-3000:]
            with duckdb.connect(str(home / "ledger.duckdb"), read_only=True) as con:
                return con.execute(sql).fetchone()[0]

        wait_for(lambda: count("SELECT count(*) FROM quest_status WHERE status = 'completed'"),
                 420, "a quest trained by the wheel's daemon", interval=2)
        wait_for(lambda: count("SELECT count(*) FROM evals"), 300, "an eval by the wheel's Task Master",
                 interval=2)
        # ... by the wheel's own eval pipeline, run to its end.
        wait_for(lambda: count("SELECT count(*) FROM tasks WHERE task_id = 'process_eval_queue' "
                               "AND status = 'done'"), 300, "the eval pipeline to finish", interval=2)
    finally:
        procs.stop_all()
    out = next((home / "tasks" / "process_eval_queue").glob("*.ipynb")).read_text()
    assert "BIN  " in out and "Traceback" not in out  # its per-skill accuracy lines
    log = (tmp_path / "play.log").read_text()
    assert "dio-mini" in log and "Traceback" not in log, log[-3000:]
