"""Hub ids online, against a stand-in for the Hub on 127.0.0.1 (huggingface_hub's endpoint
pointed at it; nothing leaves the machine): `cached` never asks the Hub, `fetch` downloads
an id that is not cached into the local cache, and a download that fails names the id, the
error and the command that fetches it. Also: which HF_HUB_OFFLINE values mean offline, and
a dataset id found in the cache as a dataset."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from realm_kernel.hero_model import hub

SHA = "89abcdef0123456789abcdef0123456789abcdef"
CONFIG = json.dumps({"model_type": "qwen3", "hidden_size": 8}).encode()
BLOB = hashlib.sha1(b"blob %d\0" % len(CONFIG) + CONFIG).hexdigest()  # git's blob id


class HubStandIn(BaseHTTPRequestHandler):
    """Serves one model repo, realm-test/served, holding a config.json; every other repo
    is not found. Every request is recorded on the server."""

    def _answer(self, body: bytes | None) -> None:
        self.server.requests.append((self.command, self.path))  # type: ignore[attr-defined]
        path = self.path.split("?")[0]
        repo = "realm-test/served"
        if path == f"/api/models/{repo}/revision/main":
            payload = json.dumps({"id": repo, "sha": SHA,
                                  "siblings": [{"rfilename": "config.json"}]}).encode()
            self._send(200, payload, {"Content-Type": "application/json"}, body)
        elif path == f"/api/models/{repo}/tree/{SHA}":
            payload = json.dumps([{"type": "file", "oid": BLOB, "size": len(CONFIG),
                                   "path": "config.json"}]).encode()
            self._send(200, payload, {"Content-Type": "application/json"}, body)
        elif path in (f"/{repo}/resolve/{SHA}/config.json", f"/{repo}/resolve/main/config.json"):
            self._send(200, CONFIG, {"X-Repo-Commit": SHA, "ETag": f'"{BLOB}"'}, body)
        else:
            self._send(404, b'{"error": "Repository not found"}',
                       {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"}, body)

    def _send(self, code: int, payload: bytes, headers: dict[str, str], body: bytes | None) -> None:
        self.send_response(code)
        for k, v in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(k, v)
        self.end_headers()
        if body is None:
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(None)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(b"")

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def online_hub(tmp_path, monkeypatch) -> Iterator[ThreadingHTTPServer]:
    """An empty local cache and huggingface_hub online, its endpoint the stand-in."""
    from huggingface_hub import constants
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubStandIn)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # Both: the file URL template is built from the endpoint once, at import.
    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_cached_never_asks_the_hub(online_hub):
    assert hub.cached("realm-test/served") is None
    assert online_hub.requests == []  # a request would have been recorded before it returned


def test_fetch_downloads_an_id_that_is_not_cached(online_hub):
    path = hub.fetch("realm-test/served")
    assert path == Path(hub.cache_dir()) / "models--realm-test--served" / "snapshots" / SHA
    assert (path / "config.json").read_bytes() == CONFIG
    assert ("GET", f"/realm-test/served/resolve/{SHA}/config.json") in online_hub.requests
    assert hub.cached("realm-test/served") == path  # now in the cache, found offline too


def test_a_failed_download_names_the_id_the_error_and_the_fetch(online_hub):
    with pytest.raises(hub.HubModelMissing) as err:
        hub.fetch("realm-test/absent")
    msg = str(err.value)
    assert online_hub.requests, "the download was tried"
    assert msg.startswith("base_model 'realm-test/absent' is not in the local Hugging Face cache (")
    assert "and the download failed (" in msg and "Error: " in msg
    assert "fetch it once where there is network with `hf download realm-test/absent`" in msg


@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("yes", True),
                                            ("0", False), ("", False)])
def test_which_hf_hub_offline_values_mean_offline(monkeypatch, value, offline):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub.offline() is offline


def test_a_dataset_id_is_found_as_a_dataset(tmp_path, monkeypatch):
    from huggingface_hub import constants
    cache = tmp_path / "hub"
    repo = cache / "datasets--realm-test--rows"
    (repo / "snapshots" / SHA).mkdir(parents=True)
    (repo / "snapshots" / SHA / "data.jsonl").write_text('{"text": "a"}\n')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.cached("realm-test/rows", repo_type="dataset") == repo / "snapshots" / SHA
    assert hub.cached("realm-test/rows") is None  # not a model
