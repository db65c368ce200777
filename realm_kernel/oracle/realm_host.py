"""An Oracle host that is another realm server (its `realm` service in hosts.toml): it
loads the exact checkpoint asked for (from its own disk, or fetched by step from the
realm's shared zone: store/shared_zone.py) and chats with it there, over its Oracle REST API.

This realm's ledger stays the judge of what a step is: a step it has no checkpoint of is
refused here (404) before the host is asked, and every reply must name the checkpoint this
ledger names for that step, or it is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .client import STATUS_TIMEOUT, OracleApiClient
from .pool import LOCAL, ModelNotLoaded, RemoteError, Sampling


class RealmOracleHost:
    """The same methods as `remote.RemoteOracle` (status, load, unload, stream)."""

    def __init__(self, host: str, url: str, name_of: Callable[[int], str], token: str | None = None) -> None:
        self.host, self.url, self.name_of = host, url.rstrip("/"), name_of
        self.api = OracleApiClient(self.url, token, f"host {host} ({self.url})", hop=False)

    def status(self) -> dict:
        try:
            st = self.api._json("GET", "status", STATUS_TIMEOUT, params={"host": LOCAL})["hosts"][LOCAL]
        except (RemoteError, LookupError, ValueError) as e:
            return {"host": self.host, "url": self.url, "kind": "realm", "reachable": False,
                    "error": str(e), "loaded_models": [], "model_count": 0, "steps": []}
        models = st.get("loaded_models", [])
        return {"host": self.host, "url": self.url, "kind": "realm", "reachable": True,
                "loaded_models": models, "model_count": len(models),
                "steps": sorted(m["step"] for m in models)}

    def _checked(self, step: int, reply: dict) -> dict:
        """The host's reply, refused unless it names this realm's checkpoint of `step`."""
        want = self.name_of(step)
        if reply.get("step") != step or reply.get("model") != want:
            raise RemoteError(f"host {self.host} answered with {reply.get('model')!r} (step "
                              f"{reply.get('step')}), not {want!r} (step {step}): refused")
        return {**reply, "host": self.host}

    def _here(self, e: ModelNotLoaded) -> ModelNotLoaded:
        return ModelNotLoaded(e.step, e.loaded, self.host)

    def load(self, step: int) -> dict:
        self.name_of(step)  # UnknownCheckpoint (404) for a step this realm never saved
        return self._checked(step, self.api.load(step))

    def unload(self, step: int) -> dict:
        try:
            return {**self.api.unload(step), "host": self.host}
        except ModelNotLoaded as e:
            raise self._here(e) from None

    def stream(self, step: int, messages: list[dict], sampling: Sampling) -> Iterator[dict]:
        self.name_of(step)
        try:
            events = self.api.stream(step, messages, sampling)  # refusals raise before any event
        except ModelNotLoaded as e:
            raise self._here(e) from None
        return self._relabel(step, events)

    def _relabel(self, step: int, events: Iterator[dict]) -> Iterator[dict]:
        for ev in events:
            yield self._checked(step, ev) if ev.get("type") in ("start", "done") else ev
