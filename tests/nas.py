"""A NAS for the tests and the benchmarks: Debian's real OpenSSH server on 127.0.0.1,
started from a temp folder with its own host key, one authorized client key, a free port
and its own config (no PAM, StrictModes off), serving SFTP. `.ci/run` installs
openssh-server. Plain functions and one class (no pytest), like tests/helpers.py."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

from .helpers import Procs, free_port, wait_for

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")
NO_SSHD = (f"the SFTP zone tests need Debian's OpenSSH server at {SSHD}: "
           "`sudo apt-get install openssh-server` (.ci/run installs it)")


def keygen(path: Path) -> Path:
    """An ed25519 key pair without a passphrase at `path` (0600, as ssh writes it)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)
    return path


class Nas:
    """sshd on 127.0.0.1:port serving `root` (the zone's folder) to this user's key.
    `stop()` and `start()` take it down and bring it back on the same port."""

    def __init__(self, procs: Procs, workdir: Path) -> None:
        if not SSHD.exists():
            raise RuntimeError(NO_SSHD)
        self.procs, self.dir = procs, workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = self.dir / "share"
        self.root.mkdir(exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.key = keygen(self.dir / "client_key")
        host_key = keygen(self.dir / "host_key")
        (self.dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        sftp = SFTP_SERVER if SFTP_SERVER.exists() else "internal-sftp"
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile {self.dir / 'sshd.pid'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nPermitRootLogin prohibit-password\n"
            f"Subsystem sftp {sftp}\n")
        if os.geteuid() == 0:  # sshd's privilege separation folder (root only)
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        """The zone URL of the share."""
        return f"sftp://{self.user}@127.0.0.1:{self.port}{self.root}"

    def client_env(self) -> dict[str, str]:
        """fsspec's own configuration of its SFTP filesystem, from the environment: this
        key only (no agent, no ~/.ssh keys). The key is a file; nothing secret is in argv."""
        return {"FSSPEC_SFTP": json.dumps({"key_filename": str(self.key),
                                           "look_for_keys": False, "allow_agent": False})}

    def client_options(self) -> dict:
        return json.loads(self.client_env()["FSSPEC_SFTP"])

    def start(self) -> None:
        self.proc = self.procs.start(f"sshd-{self.port}", [str(SSHD), "-D", "-e", "-f",
                                                           str(self.config)], env=dict(os.environ))
        wait_for(self.answers, 30, f"sshd on 127.0.0.1:{self.port}", interval=0.1)

    def answers(self) -> bool:
        """sshd is up once it sends its banner."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"sshd exited {self.proc.returncode}: "
                               + self.proc.log_path.read_text()[-2000:])  # type: ignore[attr-defined]
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            return s.recv(64).startswith(b"SSH-")

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None

    def scp_argv(self, src: Path, dest: str) -> list[str]:
        """`scp -r` of `src` to `dest` on the share, with the same key (the benchmark's
        baseline)."""
        return ["scp", "-q", "-r", "-P", str(self.port), "-i", str(self.key),
                "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}",
                "-o", "BatchMode=yes", str(src), f"{self.user}@127.0.0.1:{dest}"]

    def clear(self) -> None:
        shutil.rmtree(self.root)
        self.root.mkdir()
