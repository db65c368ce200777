"""One Oracle pool per realm: the process that owns it, and every other process its client.

The pool owner (the Jupyter server extension: JupyterLab under `realm play`, or the bare
`realm oracle serve`) advertises its REST API in `status/oracle_owner.json` of the realm
home: pid, machine, URL and Jupyter token, written atomically with owner-only permissions
(0600). `Realm.oracle` is a `SharedOracle` in every process:

- in the owner (the advertised pid is this process), calls go to this process's pool;
- elsewhere, local-host calls (load, unload, status, stream, chat) go over the owner's API
  with its token, streams as Server-Sent Events read as they arrive, and errors come back
  as the same types (`ModelNotLoaded`, `UnknownCheckpoint`, `OracleError`, `RemoteError`);
- when no owner runs (no advertisement, its pid gone, it does not answer, or it refuses
  our token), calls go to this process's own pool, and `status()` says so in a `note`.

Remote inference hosts (hosts.toml) are asked directly by every process: they hold their
own models. The checkpoint list comes from the ledger, which every process can read.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests

from ..store.checkpoints import UnknownCheckpoint
from ..store.config import ConfigError
from ..store.paths import atomic_write_json, read_json
from ..store.process import pid_alive
from .pool import (
    LOCAL,
    ModelNotLoaded,
    Oracle,
    OracleError,
    RemoteError,
    Sampling,
    chat_messages,
    check_chat_size,
    final_reply,
    require_step,
)

# A request forwarded by a client: the server answers it from its own pool, never
# forwards it again (two servers on one realm can never bounce a request between them).
HOP_HEADER = "X-Realm-Oracle-Client"
CONNECT_TIMEOUT = 2.0  # a dead or unreachable owner fails this fast
STATUS_TIMEOUT = 10.0  # reading status from a live owner
WORK_TIMEOUT = 600.0  # a load or the wait between two streamed events (a 4B load on CPU)
RETRY_SECONDS = 10.0  # an owner that did not answer is not asked again for this long


class OwnerUnreachable(RemoteError):
    """The advertised pool owner did not answer, or refused this process's credentials."""


# -- the advertisement -------------------------------------------------------------------
def advertise(path: Path, url: str, token: str | None, kind: str = "jupyter-server") -> dict:
    """Publish this process as the realm's pool owner. The file holds a token, so it is
    owner-only (atomic writes go through mkstemp, which creates files 0600)."""
    ad = {"pid": os.getpid(), "machine": socket.gethostname(), "url": url.rstrip("/"),
          "token": token or "", "kind": kind, "started": time.time()}
    atomic_write_json(path, ad)
    os.chmod(path, 0o600)
    return ad


def withdraw(path: Path) -> bool:
    """Remove the advertisement if it is this process's own (a newer owner's stays)."""
    ad = read_advertisement(path)
    if ad is not None and ad["pid"] == os.getpid() and ad["machine"] == socket.gethostname():
        path.unlink(missing_ok=True)
        return True
    return False


def read_advertisement(path: Path) -> dict | None:
    ad = read_json(path, None)
    if not isinstance(ad, dict) or not isinstance(ad.get("url"), str) or not isinstance(ad.get("pid"), int):
        return None
    return {"machine": None, "token": "", "kind": "jupyter-server", **ad}


def stale_reason(ad: dict) -> str | None:
    """Why an advertisement is known dead without asking it (its pid is gone on this machine)."""
    if ad.get("machine") == socket.gethostname() and not pid_alive(ad["pid"]):
        return f"its process (pid {ad['pid']}) is gone"
    return None


# -- the client ------------------------------------------------------------------------
def _error_from(code: int, body: Any) -> Exception:
    """The exception the owner raised, rebuilt from its JSON error body."""
    body = body if isinstance(body, dict) else {}
    msg = str(body.get("error") or f"HTTP {code}")
    kind = body.get("kind")
    if kind == "ModelNotLoaded" or (code == 404 and "loaded" in body):
        return ModelNotLoaded(int(body.get("step", -1)), list(body.get("loaded") or []),
                              body.get("host") or LOCAL)
    if kind == "UnknownCheckpoint" or code == 404:
        return UnknownCheckpoint(msg)
    if kind == "ConfigError":
        return ConfigError(msg)
    if kind in ("OracleError", "ValueError") or code == 400:
        return OracleError(msg)
    return RemoteError(msg)


def _sampling_body(sampling: Sampling) -> dict:
    d = asdict(sampling)
    d["stop"] = list(sampling.stop)
    return {k: v for k, v in d.items() if v is not None and (k != "stop" or v)}


class OracleApiClient:
    """A realm server's Oracle REST API (API/oracle) with its token: `who` names it in
    every error; `hop` marks requests as forwarded (the owner answers from its own pool)."""

    def __init__(self, api: str, token: str | None, who: str, hop: bool) -> None:
        self.url, self.who = f"{api.rstrip('/')}/oracle", who
        self.headers = {HOP_HEADER: str(os.getpid())} if hop else {}
        if token:
            self.headers["Authorization"] = f"token {token}"

    def _send(self, method: str, route: str, read_timeout: float, **kw: Any) -> requests.Response:
        try:
            # A connection per call (loopback: cheap): no session state shared by threads.
            r = requests.request(method, f"{self.url}/{route}", headers=self.headers,
                                     timeout=(CONNECT_TIMEOUT, read_timeout), **kw)
        except requests.RequestException as e:
            raise OwnerUnreachable(f"{self.who} did not answer: {e}") from e
        if r.status_code in (401, 403):
            r.close()
            raise OwnerUnreachable(f"{self.who} refused this process's credentials (HTTP {r.status_code})")
        return r

    def _json(self, method: str, route: str, read_timeout: float = WORK_TIMEOUT, **kw: Any) -> dict:
        r = self._send(method, route, read_timeout, **kw)
        try:
            body = r.json()
        except ValueError:
            body = {"error": r.text[:300]}
        if not r.ok:
            raise _error_from(r.status_code, body)
        return body

    def local_status(self) -> dict:
        return self._json("GET", "status", STATUS_TIMEOUT, params={"host": LOCAL})["hosts"][LOCAL]

    def load(self, step: int) -> dict:
        return self._json("POST", "load", json={"step": step, "host": LOCAL})

    def unload(self, step: int) -> dict:
        return self._json("POST", "unload", json={"step": step, "host": LOCAL})

    def stream(self, step: int, turns: list[dict], sampling: Sampling) -> Iterator[dict]:
        """POST oracle/chat with stream: refusals (not loaded, too long) arrive as an HTTP
        error before any event and are raised here; events are yielded as they arrive."""
        body = {**_sampling_body(sampling), "step": step, "messages": turns, "host": LOCAL, "stream": True}
        r = self._send("POST", "chat", WORK_TIMEOUT, json=body, stream=True)
        if not r.ok:
            with r:
                try:
                    payload = r.json()
                except ValueError:
                    payload = {"error": r.text[:300]}
            raise _error_from(r.status_code, payload)
        return self._events(r)

    def _events(self, r: requests.Response) -> Iterator[dict]:
        with r:
            buffer = b""
            try:
                # chunk_size=None: each chunk as the server flushes it, never held back.
                for chunk in r.iter_content(chunk_size=None):
                    buffer += chunk
                    while b"\n\n" in buffer:
                        frame, buffer = buffer.split(b"\n\n", 1)
                        for line in frame.decode("utf-8").splitlines():
                            if line.startswith("data:"):
                                ev = json.loads(line[5:].strip())
                                if ev.get("type") == "error":
                                    raise _error_from(int(ev.get("status") or 502), ev)
                                yield ev
            except requests.RequestException as e:
                raise RemoteError(f"{self.who} failed mid-answer: {e}") from e


class PoolClient(OracleApiClient):
    """The realm's pool owner, as its advertisement names it."""

    def __init__(self, ad: dict) -> None:
        self.ad = ad
        super().__init__(f"{ad['url']}/realm/api", ad.get("token"),
                         f"the Oracle pool owner (pid {ad['pid']}, {ad['url']})", hop=True)


# -- Realm.oracle ----------------------------------------------------------------------
class SharedOracle:
    """The realm's one Oracle pool, wherever it lives: the same methods, arguments and
    errors as `Oracle`. `pool` is this process's own pool (used only when this process owns
    the realm's pool, or falls back to its own)."""

    def __init__(self, local: Oracle, advertisement: Path) -> None:
        self.local, self.pool, self.advertisement = local, local.pool, advertisement
        self._mine: dict | None = None  # what this process advertises once it serves
        self._clients: dict[tuple, PoolClient] = {}
        self._down: dict[tuple, tuple[float, str]] = {}  # owner -> (ask again after, why)
        self._lock = threading.Lock()
        self._forward = True
        self.note = ""

    # -- being the owner ----------------------------------------------------------------
    def serve(self, url: str, token: str | None, kind: str = "jupyter-server") -> dict:
        """Make this process the realm's pool owner, unless another live owner answers
        (then this process stays its client, and takes over when that one is gone)."""
        self._mine = {"url": url, "token": token, "kind": kind}
        other = self._owner()
        if other is not None:
            try:
                other.local_status()
                return {"owner": False, **self._public(other.ad)}
            except OwnerUnreachable:
                pass
        ad = advertise(self.advertisement, url, token, kind)
        return {"owner": True, **self._public(ad)}

    def stop_serving(self) -> bool:
        self._mine = None
        return withdraw(self.advertisement)

    @staticmethod
    def _public(ad: dict) -> dict:
        return {"pid": ad["pid"], "url": ad["url"], "kind": ad.get("kind")}

    # -- routing --------------------------------------------------------------------------
    def in_process(self) -> SharedOracle:
        """The same methods over this process's own pool only: what a server answers a
        forwarded request from (never forwarded again)."""
        view = copy.copy(self)
        view._forward = False
        return view

    def _owner(self) -> PoolClient | None:
        """The owner's client, or None: this process's pool answers (self.note says why)."""
        here = f"this process (pid {os.getpid()})"
        if not self._forward:
            self.note = f"answered from {here}'s own pool"
            return None
        ad = read_advertisement(self.advertisement)
        if ad is None:
            if self._mine is not None:
                return self._claim("no pool owner was advertised")
            self.note = (f"no Oracle pool owner runs for this realm (JupyterLab via `realm play`, or "
                         f"`realm oracle serve`): models load into {here}, and other processes "
                         "do not see them")
            return None
        if ad["pid"] == os.getpid() and ad.get("machine") in (None, socket.gethostname()):
            self.note = f"{here} owns the realm's Oracle pool; other processes are its clients"
            return None
        why = stale_reason(ad)
        if why is not None:
            if self._mine is not None:
                return self._claim(f"the advertised owner (pid {ad['pid']}) is gone")
        else:
            key = (ad["pid"], ad["url"], ad.get("token"))
            with self._lock:
                down = self._down.get(key)
                if down is None or down[0] <= time.monotonic():
                    self.note = f"served by the realm's Oracle pool owner (pid {ad['pid']}, {ad['url']})"
                    return self._clients.setdefault(key, PoolClient(ad))
            why = down[1]
        self.note = (f"the advertised Oracle pool owner (pid {ad['pid']}, {ad['url']}, in "
                     f"{self.advertisement.name}) is not usable: {why}; models load into {here} "
                     "until it answers again")
        return None

    def _claim(self, why: str) -> None:
        ad = advertise(self.advertisement, self._mine["url"], self._mine["token"], self._mine["kind"])
        self.note = f"this process (pid {ad['pid']}) took over the realm's Oracle pool ({why})"
        return None

    def _gave_up(self, client: PoolClient, e: OwnerUnreachable) -> None:
        key = (client.ad["pid"], client.ad["url"], client.ad.get("token"))
        with self._lock:
            self._down[key] = (time.monotonic() + RETRY_SECONDS, str(e))
            self._clients.pop(key, None)

    def _call(self, remote, local):
        """remote(client) on the owner; local() here when there is none or it fails to answer."""
        client = self._owner()
        if client is not None:
            try:
                return remote(client)
            except OwnerUnreachable as e:
                self._gave_up(client, e)
                self._owner()  # sets the note (and takes over when this process may)
        return local()

    # -- the Oracle's methods ---------------------------------------------------------------
    def hosts(self) -> list[str]:
        return self.local.hosts()

    def remote(self, host: str):
        return self.local.remote(host)

    def checkpoints(self) -> list[dict]:
        return self.local.checkpoints()

    def local_status(self) -> dict:
        """The local host's pool: what is really loaded in the realm's one pool, who holds it."""
        def here() -> dict:
            owner = read_advertisement(self.advertisement)
            mine = owner is not None and owner["pid"] == os.getpid()
            return {**self.pool.status(), "shared": mine, "client": False,
                    "owner": {"pid": os.getpid(), "url": owner["url"] if mine else None,
                              "kind": owner.get("kind") if mine else "this process"},
                    "note": self.note}

        def there(client: PoolClient) -> dict:
            st = client.local_status()
            return {**st, "shared": True, "client": True, "note": self.note}
        return self._call(there, here)

    def loaded(self) -> list[dict]:
        return self.local_status()["loaded_models"]

    def served(self, hosts: list[str] | None = None) -> list[dict]:
        """What answers now on each host (default: all), each model with its `host` and
        its `id`: the checkpoint's name on this realm's own pool, `name@host` elsewhere
        (the OpenAI endpoint's model ids)."""
        out = []
        for host in self.hosts() if hosts is None else hosts:
            models = self.loaded() if host == LOCAL else self.remote(host).status()["loaded_models"]
            out += [{**m, "host": host, "id": m["model"] if host == LOCAL else f"{m['model']}@{host}"}
                    for m in models if m.get("step") is not None]
        return out

    def status(self, host: str | None = None) -> dict:
        hosts = {LOCAL: self.local_status()}
        if host in (None, ""):
            for name, r in sorted(self.local._remotes().items()):
                hosts[name] = r.status()
        elif host != LOCAL:
            hosts[host] = self.local.remote(host).status()
        return {"hosts": hosts}

    def load(self, step: Any, host: str | None = None) -> dict:
        step = require_step(step)
        if host not in (None, "", LOCAL):
            return self.local.load(step, host)
        return self._call(lambda c: c.load(step), lambda: self.local.load(step, host))

    def unload(self, step: Any, host: str | None = None) -> dict:
        step = require_step(step)
        if host not in (None, "", LOCAL):
            return self.local.unload(step, host)
        return self._call(lambda c: c.unload(step), lambda: self.local.unload(step, host))

    def stream(self, step: Any, message: Any = None, messages: Any = None, host: str | None = None,
               sampling: dict | Sampling | None = None) -> Iterator[dict]:
        """Validated before the first event (here, then by the owner), so errors are plain
        exceptions; the events come as the owner streams them."""
        if host not in (None, "", LOCAL):
            return self.local.stream(step, message, messages, host, sampling)
        step = require_step(step)
        turns = check_chat_size(chat_messages(message, messages))
        s = sampling if isinstance(sampling, Sampling) else Sampling.from_dict(sampling)
        return self._call(lambda c: c.stream(step, turns, s),
                          lambda: self.local.stream(step, None, turns, host, s))

    def chat(self, step: Any = None, message: Any = None, messages: Any = None, host: str | None = None,
             sampling: dict | Sampling | None = None) -> dict:
        return final_reply(self.stream(step, message, messages, host, sampling))
