"""A real Jupyter server with the realm extension, run in the test's own process with its
IOLoop on a thread: seconds to start, where `realm play` or `realm oracle serve` as a
subprocess takes a minute on a loaded machine. Started inside a test, not in a fixture:
mutmut bounds a mutant's run by the tests' own durations, and a fixture's would not count.

Each server runs on an event loop of its own, made here and closed after: a loop left
current by an earlier server would be handed to the next, and in a forked child (mutmut
runs each mutant's tests in one) its default executor has none of the parent's threads,
so every handler's `asyncio.to_thread` would wait forever."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from realm_kernel.oracle.client import read_advertisement

from ..helpers import TEST_TOML, TOKEN, wait_for

# The environment's other server extensions (JupyterLab, LSP, terminals, Panel) are off:
# they cost seconds to load and mount nothing under /realm/api.
ONLY_REALM = {"realm_kernel.server": True, "jupyterlab": False, "jupyter_lsp": False,
              "jupyter_server_terminals": False, "notebook_shim": False,
              "panel.io.jupyter_server_extension": False}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def fresh_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop, current in this thread: the next server's IOLoop wraps it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def close_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(None)
    loop.close()


@contextmanager
def serving(paths, tmp_path, monkeypatch, toml: str = TEST_TOML) -> Iterator[tuple]:
    """A Jupyter server with the realm extension on 127.0.0.1 for the realm at `paths`,
    its loop on a thread, once it has advertised its Oracle pool: (app, API URL, log)."""
    from jupyter_server.serverapp import ServerApp
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_PATH", "config-path")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("REALM_HOME", str(paths.home))
    monkeypatch.setenv("REALM_WEAVER", "0")
    monkeypatch.setenv("JUPYTER_TOKEN", TOKEN)
    paths.config_file.write_text(toml)
    log = Records()

    class RecordedServerApp(ServerApp):
        def load_server_extensions(self) -> None:
            # After traitlets configured logging (which drops handlers added earlier),
            # before the extension loads and logs.
            self.log.addHandler(log)
            super().load_server_extensions()

    event_loop = fresh_event_loop()
    app = RecordedServerApp()
    app.initialize(argv=["--ip=127.0.0.1", "--port=0", "--no-browser", "--allow-root",
                         "--ServerApp.port_retries=0", f"--ServerApp.root_dir={paths.home}",
                         f"--ServerApp.jpserver_extensions={ONLY_REALM!r}"])
    loop = threading.Thread(target=app.io_loop.start, name="test-server", daemon=True)
    loop.start()
    try:
        wait_for(lambda: (read_advertisement(paths.oracle_owner) or {}).get("pid") == os.getpid(), 60,
                 "the server's Oracle advertisement")
        # The extension writes the advertisement, then logs it, in one callback of the
        # server's loop: a callback queued now runs after that one has finished, so the
        # log is complete when it fires (a test reading the log at once raced the line).
        logged = threading.Event()
        app.io_loop.add_callback(logged.set)
        assert logged.wait(60), "the server's loop ran no callback in 60 s"
        yield app, f"http://127.0.0.1:{app.port}{app.base_url}realm/api", log
    finally:
        app.io_loop.add_callback(app.io_loop.stop)
        loop.join(30)
        app.http_server.stop()
        app.io_loop.run_sync(app.cleanup_extensions)
        app.log.removeHandler(log)
        close_event_loop(event_loop)


def sse(r: requests.Response) -> list:
    """The `data:` payloads of a Server-Sent Events reply, JSON-decoded ("[DONE]" kept)."""
    out = []
    for line in r.text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out
