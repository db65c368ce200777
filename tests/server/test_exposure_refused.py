"""The realm extension refuses a Jupyter server that listens beyond loopback without a
login, in seconds: a real ServerApp in this process, initialised with every address and
no token, stops with exit status 2 and says why and what to set, on stderr and in its
log; on loopback with no token it loads. The same refusal as `realm play` in a
subprocess is tests/reliability's exposure test (slow)."""

from __future__ import annotations

import pytest

from realm_kernel.server import _serve_oracle
from realm_kernel.store.paths import RealmPaths

from ..helpers import TEST_TOML
from .in_process import ONLY_REALM, Records, close_event_loop, fresh_event_loop

REFUSAL = ("refusing to expose the realm's Jupyter server (address 0.0.0.0) without a login: "
           "set a token (JUPYTER_TOKEN) or a password; see docs/reliability.md")


def initialised(tmp_path, monkeypatch, ip: str):
    """A ServerApp for a fresh realm, with no token, initialised on `ip`; (app, log)."""
    from jupyter_server.serverapp import ServerApp
    paths = RealmPaths.at(tmp_path / "realm").ensure()
    paths.config_file.write_text(TEST_TOML)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_PATH", "config-path")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("REALM_HOME", str(paths.home))
    monkeypatch.setenv("REALM_WEAVER", "0")
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    log = Records()

    class RecordedServerApp(ServerApp):
        def load_server_extensions(self) -> None:
            self.log.addHandler(log)
            super().load_server_extensions()

    app = RecordedServerApp()
    app.initialize(argv=[f"--ip={ip}", "--port=0", "--no-browser", "--allow-root",
                         "--IdentityProvider.token=", "--ServerApp.port_retries=0",
                         f"--ServerApp.root_dir={paths.home}",
                         f"--ServerApp.jpserver_extensions={ONLY_REALM!r}"])
    return app, log


def test_every_address_without_a_login_is_refused_and_loopback_is_not(tmp_path, monkeypatch, capsys):
    loop = fresh_event_loop()
    try:
        with pytest.raises(SystemExit) as stopped:
            initialised(tmp_path / "open", monkeypatch, "0.0.0.0")
        assert stopped.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {REFUSAL}"

        app, log = initialised(tmp_path / "loopback", monkeypatch, "127.0.0.1")
        assert not app.identity_provider.auth_enabled  # no login, and no refusal either
        assert any(line.startswith("Realm of Training: API at /realm/api") for line in log.lines), log.lines
        # The pool cannot be advertised (a folder where the file goes): the server says why
        # and serves on, its Oracle this process's own.
        realm = app.web_app.settings["realm"]
        realm.paths.oracle_owner.mkdir()
        _serve_oracle(app, realm)
        assert any(line.startswith("Realm of Training: could not advertise the Oracle pool: ")
                   and str(realm.paths.oracle_owner) in line for line in log.lines), log.lines
        realm.paths.oracle_owner.rmdir()
        app.io_loop.run_sync(app.cleanup_extensions)
    finally:
        close_event_loop(loop)
