"""A remote Oracle host: an OpenAI-compatible server (vLLM or any /v1/chat/completions).

Such a server serves what it was started with, so "load" here means "verify it is
served". Before answering, the served model list must hold the checkpoint asked for;
every streamed chunk must name it too, or the answer is refused.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

import requests

from .pool import ModelNotLoaded, OracleError, RemoteError, Sampling

STEP_RE = re.compile(r"^checkpoint-(\d+)(?:-\d{8}-\d{4})?$")


def served_matches(served_id: str, name: str, step: int) -> bool:
    """vLLM names a model by --served-model-name, else by the path it was given."""
    return served_id == name or PurePosixPath(served_id).name == name or (
        step > 0 and served_id == f"checkpoint-{step}")


class RemoteOracle:
    def __init__(self, host: str, url: str, name_of: Callable[[int], str], token: str | None = None,
                 timeout: float = 10.0) -> None:
        self.host, self.url, self.name_of, self.timeout = host, url.rstrip("/"), name_of, timeout
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _get(self, path: str) -> Any:
        try:
            r = requests.get(f"{self.url}{path}", headers=self.headers, timeout=self.timeout)
            r.raise_for_status()
            return r.json()
        except (requests.RequestException, ValueError) as e:
            raise RemoteError(f"host {self.host} ({self.url}) did not answer {path}: {e}") from e

    def served(self) -> list[dict]:
        return [m for m in self._get("/v1/models").get("data", []) if isinstance(m, dict) and "id" in m]

    def _step_of(self, served_id: str) -> int | None:
        m = STEP_RE.match(PurePosixPath(served_id).name)
        if m:
            return int(m.group(1))
        return 0 if served_matches(served_id, self.name_of(0), 0) else None

    def status(self) -> dict:
        try:
            served = self.served()
        except RemoteError as e:
            return {"host": self.host, "url": self.url, "reachable": False, "error": str(e),
                    "loaded_models": [], "model_count": 0, "steps": []}
        models = [{"step": self._step_of(m["id"]), "model": m["id"], "model_path": m.get("root") or m["id"]}
                  for m in served]
        return {"host": self.host, "url": self.url, "reachable": True, "loaded_models": models,
                "model_count": len(models),
                "steps": sorted(m["step"] for m in models if m["step"] is not None)}

    def resolve(self, step: int) -> dict:
        """The served entry of exactly this step, or ModelNotLoaded naming what is served."""
        name = self.name_of(step)
        served = self.served()
        for m in served:
            if served_matches(m["id"], name, step):
                return {"host": self.host, "step": step, "model": name, "served_id": m["id"],
                        "model_path": m.get("root") or m["id"]}
        steps = sorted(s for s in (self._step_of(m["id"]) for m in served) if s is not None)
        raise ModelNotLoaded(step, steps, self.host)

    def load(self, step: int) -> dict:
        return {**self.resolve(step), "already_loaded": True, "evicted": []}

    def unload(self, step: int) -> dict:
        raise OracleError(f"host {self.host!r} is an OpenAI-compatible server: stop or restart it "
                          "there to change what it serves")

    def stream(self, step: int, messages: list[dict], sampling: Sampling) -> Iterator[dict]:
        target = self.resolve(step)  # before the first event: a missing step is a plain error
        return self._stream(target, messages, sampling)

    def _stream(self, target: dict, messages: list[dict], sampling: Sampling) -> Iterator[dict]:
        identity = {k: target[k] for k in ("host", "step", "model", "model_path")}
        body = {"model": target["served_id"], "messages": messages, "stream": True,
                "max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "stream_options": {"include_usage": True}}
        if sampling.top_k:
            body["top_k"] = sampling.top_k
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        t0 = time.perf_counter()
        yield {"type": "start", **identity}
        parts: list[str] = []
        finish, usage, ttft = None, None, None
        try:
            with requests.post(f"{self.url}/v1/chat/completions", json=body, headers=self.headers,
                               stream=True, timeout=(self.timeout, 600)) as r:
                if r.status_code != 200:
                    raise RemoteError(f"host {self.host} refused the chat ({r.status_code}): {r.text[:300]}")
                for line in r.iter_lines(decode_unicode=True):
                    if not line or not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("model") != target["served_id"]:
                        raise RemoteError(f"host {self.host} answered with model {chunk.get('model')!r}, "
                                          f"not {target['served_id']!r}: answer refused")
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices", []):
                        text = (choice.get("delta") or {}).get("content") or ""
                        finish = choice.get("finish_reason") or finish
                        if text:
                            ttft = ttft if ttft is not None else time.perf_counter() - t0
                            parts.append(text)
                            yield {"type": "token", "text": text}
        except (requests.RequestException, ValueError) as e:
            raise RemoteError(f"host {self.host} ({self.url}) failed mid-answer: {e}") from e
        yield {"type": "done", **identity, "content": "".join(parts), "finish_reason": finish or "stop",
               "usage": usage, "seconds": round(time.perf_counter() - t0, 4),
               "ttft_seconds": round(ttft, 4) if ttft is not None else None}
