"""One Ctrl-C in the terminal stops `make play` in order (issue 27, item 9): typed into a
real pseudo-terminal, so the terminal's line discipline sends SIGINT to the foreground
process group (make, and the JupyterLab that `realm play` became), as a person's Ctrl-C
does, and JupyterLab's stdin is a terminal (where it used to ask "Shut down this Jupyter
server (y/[n])?" and resume after 5 s)."""

from __future__ import annotations

import json
import os
import pty
import sys
import threading

import pytest

from realm_kernel.server.interrupt import STILL_STOPPING, STOPPING
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.status import TRAINING, read_status
from realm_kernel.train.mixed import mixed_examples

from ..helpers import REPO, child_env, free_port, make_home, wait_for

pytestmark = pytest.mark.slow
CTRL_C = b"\x03"


class Terminal:
    """The master side of a pty: everything the child writes, drained on a thread (a full
    pty would block the child)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.data, self._lock = fd, b"", threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child side closed
                return
            if not chunk:
                return
            with self._lock:
                self.data += chunk

    @property
    def text(self) -> str:
        with self._lock:
            return self.data.decode(errors="replace")

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)


def play_command(port: int) -> list[str]:
    """`make play` where this checkout's .venv is installed and current (make would
    otherwise install it first), else what it runs: `realm play`."""
    stamp, venv_python = REPO / ".venv" / ".installed", REPO / ".venv" / "bin" / "python"
    if (stamp.exists() and stamp.stat().st_mtime >= (REPO / "pyproject.toml").stat().st_mtime
            and os.path.samefile(sys.executable, venv_python)):
        return ["make", "-s", "play", f"PORT={port}"]
    return [sys.executable, "-m", "realm_kernel.cli", "play", f"--port={port}"]


def test_one_ctrl_c_stops_make_play_in_order_and_a_second_says_it_is_still_stopping(
        tmp_path, dio_mini_dir):
    paths = make_home(tmp_path / "realm", dio_mini_dir)
    (paths.inbox / "long.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in mixed_examples(8000, seed=3)))
    env = {**child_env(paths.home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"), "TERM": "dumb"}
    argv = play_command(free_port())
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(REPO)
        os.execvpe(argv[0], argv, env)
    term = Terminal(fd)
    exited: dict[str, int] = {}

    def gone() -> bool:
        if not exited:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                exited["status"] = status
        return bool(exited)

    try:
        def training() -> dict:
            s = read_status(paths, TRAINING)
            return s.get("state") == "training" and (s.get("local_step") or 0) > 3 and s
        wait_for(lambda: gone() or training(), 300, f"DIO to train under {argv}")
        assert not exited, term.text[-3000:]

        term.type(CTRL_C)
        wait_for(lambda: STOPPING in term.text or gone(), 60, "the stop to begin")
        term.type(CTRL_C)  # at once: the daemon is still finishing its step and saving
        wait_for(gone, 300, "make play to exit")
    finally:
        if not gone():
            os.killpg(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)

    out = term.text
    assert "Shut down this Jupyter server" not in out, out[-3000:]
    assert STOPPING in out and STILL_STOPPING in out, out[-3000:]
    # In order: the daemon stopped (JupyterLab's own shutdown comes after the Weaver's).
    assert out.index(STOPPING) < out.index("Shutting down"), out[-3000:]
    assert "killing it" not in out  # no child needed more than its stop timeout
    # At a step boundary with a checkpoint: the battle's last step is a saved checkpoint,
    # the quest is back in its queue, and the daemon said it closed.
    last = read_status(paths, TRAINING)  # "offline" once the daemon is gone, at its last step
    assert last["state"] == "offline" and last["step"] > 3, last
    led = Ledger(paths)
    assert led.scalar("SELECT max(step) FROM checkpoints") == last["step"]
    assert led.scalar("SELECT count(*) FROM events WHERE kind = 'daemon_stopped'") == 1
    led.close()
    assert list(paths.queue("normal").glob("*.jsonl")) and not list(paths.queue("processing").glob("*"))
