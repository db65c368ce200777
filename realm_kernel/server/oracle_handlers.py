"""The Oracle's REST API under /realm/api/oracle, and its OpenAI-compatible face under
/realm/api/oracle/v1 (any OpenAI client, eval harness or chat UI can talk to a checkpoint).

Loading and generation run in a thread executor: Jupyter's tornado loop never blocks.
Streams are Server-Sent Events written chunk by chunk.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.web

from ..api import ConfigError, ModelNotLoaded, OracleError, RemoteError, UnknownCheckpoint
from ..oracle.client import HOP_HEADER, SharedOracle
from ..oracle.pool import LOCAL, Sampling
from .handlers import RealmHandler, mount

# Generation threads of the server process (each generation also starts one streamer
# thread); a bounded pool keeps a burst of chats from starving the loop's own threads.
_new_executor = functools.partial(ThreadPoolExecutor, max_workers=8, thread_name_prefix="oracle")
EXECUTOR = _new_executor()
_END = object()


def _fresh_executor_in_child() -> None:
    """A forked child has none of its parent's threads: the parent's pool, once it has
    run work, would queue the child's and never run it (every Oracle request of a server
    in the child would hang). The child gets its own pool."""
    global EXECUTOR
    EXECUTOR = _new_executor()


os.register_at_fork(after_in_child=_fresh_executor_in_child)


def status_of(exc: BaseException) -> int:
    if isinstance(exc, ModelNotLoaded | UnknownCheckpoint):
        return 404
    if isinstance(exc, RemoteError):
        return 502
    if isinstance(exc, ConfigError):
        return 500
    if isinstance(exc, OracleError | ValueError):
        return 400
    return 500


async def in_thread(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(EXECUTOR, lambda: fn(*args, **kwargs))


async def each_in_thread(events: Iterator[dict]):
    """Iterate a blocking event generator without blocking the loop."""
    while True:
        ev = await in_thread(next, events, _END)
        if ev is _END:
            return
        yield ev


class OracleHandler(RealmHandler):
    @property
    def oracle(self) -> SharedOracle:
        """The realm's pool; a request another process forwarded is answered from this
        process's own pool, never forwarded again."""
        oracle = self.realm.oracle
        return oracle.in_process() if self.request.headers.get(HOP_HEADER) else oracle

    def fail(self, exc: BaseException) -> None:
        code = status_of(exc)
        # `kind` lets a client process raise the same exception type (oracle.client).
        body: dict[str, Any] = {"ok": False, "success": False, "status": code, "error": str(exc),
                                "kind": type(exc).__name__}
        if isinstance(exc, ModelNotLoaded):
            body.update(step=exc.step, loaded=exc.loaded, host=exc.host)
        self.reply(body, code)

    async def call(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        try:
            self.reply(await in_thread(fn, *args, **kwargs))
        except (LookupError, ValueError, RemoteError) as e:
            self.fail(e)

    def sse(self, data: Any) -> None:
        self.write(f"data: {data if isinstance(data, str) else json.dumps(data, default=str)}\n\n")

    def start_sse(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")


class StatusHandler(OracleHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.call(self.oracle.status, self.get_query_argument("host", None))


class CheckpointsHandler(OracleHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.call(lambda: {"checkpoints": self.oracle.checkpoints()})


# The fields each Oracle route reads; any other is a 400 naming it, never ignored.
PLACE = frozenset({"step", "host"})
CHAT = PLACE | {"message", "messages", "stream"} | set(Sampling.__dataclass_fields__)


class LoadHandler(OracleHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_fields(PLACE)
        await self.call(self.oracle.load, body.get("step"), body.get("host"))


class UnloadHandler(OracleHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_fields(PLACE)
        await self.call(self.oracle.unload, body.get("step"), body.get("host"))


class ChatHandler(OracleHandler):
    """{message | messages, step, host?, stream?, max_new_tokens?, temperature?, ...}"""

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_fields(CHAT)
        oracle = self.oracle
        try:
            # Validation and the "is it loaded" check happen here, before any byte is sent.
            events = await in_thread(oracle.stream, body.get("step"), body.get("message"),
                                     body.get("messages"), body.get("host"), body)
        except (LookupError, ValueError, RemoteError) as e:
            return self.fail(e)
        if not body.get("stream"):
            try:
                done = [ev async for ev in each_in_thread(events)][-1]
            except RemoteError as e:
                return self.fail(e)
            return self.reply({"ok": True, "success": True,
                               **{k: v for k, v in done.items() if k != "type"}})
        self.start_sse()
        try:
            async for ev in each_in_thread(events):
                self.sse(ev)
                await self.flush()
        except RemoteError as e:
            self.sse({"type": "error", "error": str(e), "status": 502})
        self.finish()


# -- OpenAI-compatible ---------------------------------------------------------------
def openai_error(message: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


class ModelsHandler(OracleHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            loaded = await in_thread(self.oracle.served)
        except RemoteError as e:
            return self.fail(e)
        self.reply({"object": "list", "data": [
            {"id": m["id"], "object": "model", "created": int(m.get("loaded_at") or 0),
             "owned_by": "realm", "root": m["model_path"], "step": m["step"], "host": m["host"]}
            for m in loaded]})


# What /v1/chat/completions honours; any other parameter is a 400 naming it, never ignored.
SUPPORTED = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
             "top_k", "repetition_penalty", "stream", "stream_options", "stop", "seed", "user"}
# Parameters accepted only at the value that changes nothing (what clients send by default).
NEUTRAL = {"n": (1,), "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0),
           "logprobs": (False,), "parallel_tool_calls": (None,)}


def unsupported(body: dict) -> str | None:
    for key, value in body.items():
        if key in SUPPORTED or value is None or value in NEUTRAL.get(key, ()):
            continue
        return key
    return None


class CompletionsHandler(OracleHandler):
    """POST /v1/chat/completions: `model` must name a loaded checkpoint exactly: its name
    on this realm's pool, `name@host` on an inference host (as /v1/models lists them)."""

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        if (key := unsupported(body)) is not None:
            return self.reply(openai_error(f"unsupported parameter: {key!r} (this endpoint honours "
                                           f"{', '.join(sorted(SUPPORTED))})", "unsupported_parameter",
                                           key), 400)
        oracle = self.oracle
        name = body.get("model")
        if not isinstance(name, str):
            return self.reply(openai_error("`model` (a loaded checkpoint name) is required",
                                           "missing_model", "model"), 400)
        if not isinstance(body.get("stream_options") or {}, dict):
            return self.reply(openai_error("`stream_options` must be an object", "invalid",
                                           "stream_options"), 400)
        sampling = {"max_new_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
                    "temperature": body.get("temperature"), "top_p": body.get("top_p"),
                    "top_k": body.get("top_k"), "repetition_penalty": body.get("repetition_penalty"),
                    "stop": body.get("stop"), "seed": body.get("seed")}
        try:  # checked before the model is looked up: a bad setting is a 400 whatever is loaded
            Sampling.from_dict(sampling)
        except OracleError as e:
            return self.reply(openai_error(str(e), "invalid"), 400)
        host = name.rpartition("@")[2] if "@" in name else LOCAL
        try:
            loaded = await in_thread(oracle.served, [host])
        except RemoteError as e:
            return self.reply(openai_error(str(e), "oracle_unavailable"), 502)
        except LookupError as e:  # no such host
            return self.reply(openai_error(str(e), "model_not_found", "model"), 404)
        m = next((m for m in loaded if m["id"] == name), None)
        if m is None:
            names = [m["id"] for m in loaded]
            return self.reply(openai_error(f"model {name!r} is not loaded; loaded: {names}",
                                           "model_not_found", "model"), 404)
        try:
            events = await in_thread(oracle.stream, m["step"], None, body.get("messages"),
                                     host, sampling)
        except RemoteError as e:
            return self.reply(openai_error(str(e), "oracle_unavailable"), 502)
        except (LookupError, ValueError) as e:
            code = 404 if isinstance(e, LookupError) else 400
            return self.reply(openai_error(str(e), "model_not_found" if code == 404 else "invalid"), code)
        base = {"id": f"chatcmpl-{time.time_ns()}", "created": int(time.time()), "model": m["id"],
                "system_fingerprint": f"realm-step-{m['step']}"}
        if not body.get("stream"):
            done = [ev async for ev in each_in_thread(events)][-1]
            return self.reply({**base, "object": "chat.completion", "usage": done["usage"],
                               "model_path": done["model_path"], "choices": [{
                                   "index": 0, "finish_reason": done["finish_reason"],
                                   "message": {"role": "assistant", "content": done["content"]}}]})
        self.start_sse()
        chunk = {**base, "object": "chat.completion.chunk"}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        async for ev in each_in_thread(events):
            if ev["type"] == "start":
                delta, finish = {"role": "assistant", "content": ""}, None
            elif ev["type"] == "token":
                delta, finish = {"content": ev["text"]}, None
            else:
                delta, finish = {}, ev["finish_reason"]
            self.sse({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            if ev["type"] == "done" and include_usage:
                self.sse({**chunk, "choices": [], "usage": ev["usage"]})
            await self.flush()
        self.sse("[DONE]")
        self.finish()


ROUTES = [
    ("oracle/status", StatusHandler),
    ("oracle/checkpoints", CheckpointsHandler),
    ("oracle/load", LoadHandler),
    ("oracle/unload", UnloadHandler),
    ("oracle/chat", ChatHandler),
    ("oracle/v1/models", ModelsHandler),
    ("oracle/v1/chat/completions", CompletionsHandler),
]


def handlers(base_url: str) -> list[tuple[str, type]]:
    return mount(base_url, ROUTES)
