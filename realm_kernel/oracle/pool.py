"""The Oracle: chat with a checkpoint by exact step, never with the wrong model.

- The step is required; step 0 is the hero's base model.
- A step that is not loaded fails with an error naming it and the loaded ones; there is
  no fallback to another model.
- Every reply carries `model` (the canonical checkpoint name) and `model_path`.
- Local models live in a bounded pool (count and bytes, least recently used evicted);
  remote hosts are OpenAI-compatible servers (vLLM or any /v1/chat/completions) found in
  the host registry, and the served model name is checked before and after answering.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..store.checkpoints import UnknownCheckpoint
from ..train.loading import load_model_and_tokenizer

LOCAL = "local"
ROLES = ("system", "user", "assistant")
# A chat longer than this is refused before any tokenizer sees it (a 10 MB paste must
# not tie up a server thread); the model's own context length is checked after.
MAX_CHAT_CHARS = 100_000

# (step) -> (canonical name, local HF directory)
Locator = Callable[[int], tuple[str, Path]]


class OracleError(ValueError):
    """A bad request: missing step, malformed messages, bad settings (HTTP 400)."""


class ModelNotLoaded(LookupError):
    """The step asked for is not loaded (HTTP 404); names what is."""

    def __init__(self, step: int, loaded: list[int], host: str = LOCAL) -> None:
        self.step, self.loaded, self.host = step, loaded, host
        super().__init__(f"Step {step} not loaded on {host}. Loaded: {loaded}")


class RemoteError(RuntimeError):
    """A remote host did not answer, or answered with another model than asked (HTTP 502)."""


def require_step(value: Any) -> int:
    if value is None or value == "":
        raise OracleError("step is required (0 = the base model); the Oracle never guesses")
    if isinstance(value, bool):
        raise OracleError(f"step must be an integer, got {value!r}")
    try:
        step = int(value)
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: int(inf)
        raise OracleError(f"step must be an integer, got {value!r}") from e
    if step < 0 or str(step) != str(value).strip():
        raise OracleError(f"step must be a whole number >= 0, got {value!r}")
    return step


def chat_messages(message: Any = None, messages: Any = None) -> list[dict[str, str]]:
    """`message` (one user turn) or `messages` (a chat), validated into a list of turns."""
    if messages is None and message is None:
        raise OracleError("give `message` (a string) or `messages` (a list of {role, content})")
    if messages is None:
        if not isinstance(message, str) or not message.strip():
            raise OracleError("`message` must be a non-empty string")
        return [{"role": "user", "content": message}]
    if not isinstance(messages, list) or not messages:
        raise OracleError("`messages` must be a non-empty list of {role, content}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise OracleError(f"messages[{i}] must be {{role: system|user|assistant, content: string}}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def check_chat_size(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    total = sum(len(t["content"]) for t in turns)
    if total > MAX_CHAT_CHARS:
        raise OracleError(f"chat is {total} characters, over the Oracle's limit of {MAX_CHAT_CHARS}")
    return turns


@dataclass
class Sampling:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0

    # OpenAI's `stop`: up to 4 strings; the reply ends before the first one (not included).
    stop: tuple[str, ...] = ()
    # A seed makes sampled replies repeatable (torch's generator is seeded before generating).
    seed: int | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> Sampling:
        known = cls.__dataclass_fields__
        d = {k: v for k, v in (d or {}).items() if k in known and v is not None}
        special = {"stop": _stop_strings(d.pop("stop", ())), "seed": _seed(d.pop("seed", None))}
        s = cls(**{k: _number(k, v, isinstance(getattr(cls, k), int)) for k, v in d.items()},
                **special)
        if not 1 <= s.max_new_tokens <= 8192 or not 0 <= s.temperature <= 100 \
                or not 0 < s.top_p <= 1 or not 0 <= s.top_k <= 1_000_000 \
                or not 0 < s.repetition_penalty <= 100:
            raise OracleError(f"sampling settings out of range: {asdict(s)} (max_new_tokens 1-8192, "
                              "temperature 0-100, top_p over 0 to 1, top_k 0-1000000, "
                              "repetition_penalty over 0 to 100)")
        return s

    def generate_kwargs(self) -> dict:
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens,
                              "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw


def _number(name: str, value: Any, whole: bool) -> int | float:
    """One numeric sampling setting: a JSON number (or a string of ASCII digits, as a form
    sends it), finite, and whole where the setting counts tokens. `int()` would floor 3.5
    and read '٣' as 3, `float()` would take 'nan': each is refused by name instead."""
    kind = "a whole number" if whole else "a finite number"
    if isinstance(value, str) and value.strip().isascii():
        try:
            value = int(value) if whole else float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise OracleError(f"{name} must be {kind}, got {value!r}")
    if whole:
        return value
    try:
        number = float(value)
    except OverflowError:  # an int past the double range
        number = math.inf
    if not math.isfinite(number):
        raise OracleError(f"{name} must be {kind}, got {value!r}")
    return number


def _stop_strings(value: Any) -> tuple[str, ...]:
    stops = (value,) if isinstance(value, str) else value
    if not isinstance(stops, list | tuple) or len(stops) > 4 \
            or not all(isinstance(x, str) and x for x in stops):
        raise OracleError(f"stop must be a non-empty string or a list of up to 4 (got {value!r})")
    return tuple(stops)


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise OracleError(f"seed must be a non-negative integer (got {value!r})")
    return value


class StopScanner:
    """Cuts streamed text at the first stop string; holds back a tail that could still
    become one, so no part of a stop string is ever sent."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops, self.text, self.sent, self.stopped = stops, "", 0, False
        self.hold = max((len(x) for x in stops), default=1) - 1

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.text += piece
        cut = min((i for i in (self.text.find(x) for x in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.text, self.stopped = self.text[:cut], True
            end = cut
        else:
            end = max(self.sent, len(self.text) - self.hold)
        out, self.sent = self.text[self.sent:end], end
        return out

    def flush(self) -> str:
        out, self.sent = self.text[self.sent:], len(self.text)
        return out


class TokenBatches:
    """A generate() streamer that hands tokens to the reading thread in batches.

    put() in the generation loop only appends the new ids (no decoding, no queue, no
    wake-up but for the first token, so time to first token stays short); the reader
    wakes every `interval` s, decodes the reply so far once and yields the new text.
    TextIteratorStreamer decodes and wakes the reader for every token, and the two
    threads then trade the GIL each token (measured: 0.70x plain generate's pace)."""

    def __init__(self, tokenizer: Any, interval: float = 0.05) -> None:
        self.tokenizer, self.interval = tokenizer, interval
        self.ids: list[int] = []
        self.done = self._prompt_seen = False
        self.ready = threading.Event()

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() hands over the prompt first
            self._prompt_seen = True
            return
        first = not self.ids
        self.ids.extend(value.reshape(-1).tolist())
        if first:
            self.ready.set()

    def end(self) -> None:
        self.done = True
        self.ready.set()

    def __iter__(self) -> Iterator[str]:
        sent, seen = 0, 0
        while True:
            self.ready.wait(self.interval)
            self.ready.clear()
            done = self.done  # read before the ids: when set, they are all there
            ids = self.ids[:]
            if len(ids) > seen or done:
                seen = len(ids)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                # A character whose bytes are split across tokens waits for the rest.
                end = len(text) if done else len(text.rstrip("\ufffd"))
                if end > sent:
                    yield text[sent:end]
                    sent = end
            if done:
                return


@dataclass
class LoadedModel:
    step: int
    name: str
    path: Path
    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    bytes: int
    load_seconds: float
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)

    def info(self) -> dict:
        return {"step": self.step, "model": self.name, "model_path": str(self.path), "bytes": self.bytes,
                "device": str(self.model.device), "dtype": str(self.model.dtype).removeprefix("torch."),
                "load_seconds": round(self.load_seconds, 3), "loaded_at": self.loaded_at,
                "last_used": self.last_used}


def model_bytes(model: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def disk_bytes(path: Path) -> int:
    """The weights on disk: what a load will about take in memory (before dtype changes)."""
    return sum(p.stat().st_size for p in Path(path).glob("*.safetensors")) or \
        sum(p.stat().st_size for p in Path(path).glob("*.bin"))


def eos_ids(tokenizer: Any, model: Any) -> list[int]:
    """Every end-of-turn token: the tokenizer's EOS, the generation config's, <|im_end|>."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None)
    ids.update(extra if isinstance(extra, list) else [extra])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


class ModelPool:
    """Loaded models by step, bounded by count and bytes; the least recently used goes first."""

    def __init__(self, locate: Locator, max_models: int = 2, max_bytes: int = 0,
                 dtype: str = "auto", threads: int = 0) -> None:
        if max_models < 1:
            raise OracleError("the pool must hold at least one model")
        self.locate, self.max_models, self.max_bytes, self.dtype = locate, max_models, max_bytes, dtype
        self.threads = threads
        self._models: OrderedDict[int, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()  # the dict
        self._load_lock = threading.Lock()  # one load at a time (memory is the bound)
        self.evicted: list[dict] = []  # the last evictions, newest last (status shows them)

    # -- what is loaded ----------------------------------------------------------------
    def steps(self) -> list[int]:
        with self._lock:
            return sorted(self._models)

    def loaded(self) -> list[dict]:
        with self._lock:
            return [m.info() for m in sorted(self._models.values(), key=lambda m: m.step)]

    def used_bytes(self) -> int:
        with self._lock:
            return sum(m.bytes for m in self._models.values())

    def get(self, step: int) -> LoadedModel:
        with self._lock:
            m = self._models.get(step)
            if m is None:
                raise ModelNotLoaded(step, sorted(self._models))
            self._models.move_to_end(step)
            m.last_used = time.time()
            return m

    def by_name(self, name: str) -> LoadedModel:
        with self._lock:
            for m in self._models.values():
                if m.name == name:
                    self._models.move_to_end(m.step)
                    m.last_used = time.time()
                    return m
            raise UnknownCheckpoint(f"model {name!r} is not loaded; loaded: "
                                    f"{[m.name for m in self._models.values()]}")

    def status(self) -> dict:
        models = self.loaded()
        return {"host": LOCAL, "reachable": True, "loaded_models": models, "model_count": len(models),
                "steps": [m["step"] for m in models], "max_models": self.max_models,
                "max_bytes": self.max_bytes, "used_bytes": sum(m["bytes"] for m in models),
                "evicted": self.evicted[-5:]}

    # -- load / unload -----------------------------------------------------------------
    def load(self, step: int) -> dict:
        step = require_step(step)
        with self._load_lock:
            with self._lock:
                if step in self._models:
                    self._models.move_to_end(step)
                    return {**self._models[step].info(), "already_loaded": True, "evicted": []}
            name, path = self.locate(step)
            need = disk_bytes(path)
            if self.max_bytes and need > self.max_bytes:
                raise OracleError(f"{name} needs about {need} bytes, more than the pool's "
                                  f"max_bytes {self.max_bytes}")
            evicted = self._make_room(need)
            t0 = time.perf_counter()
            model, tokenizer = self._load_weights(path)
            m = LoadedModel(step, name, Path(path), model, tokenizer, model_bytes(model),
                            time.perf_counter() - t0)
            with self._lock:
                self._models[step] = m
            return {**m.info(), "already_loaded": False, "evicted": evicted}

    def _make_room(self, need: int) -> list[int]:
        evicted = []
        with self._lock:
            while self._models and (len(self._models) >= self.max_models or (
                    self.max_bytes and sum(m.bytes for m in self._models.values()) + need > self.max_bytes)):
                step, m = self._models.popitem(last=False)
                evicted.append(step)
                self.evicted.append({"step": step, "model": m.name, "at": time.time()})
        del self.evicted[:-20]
        if evicted:
            _free_device_memory()
        return evicted

    def unload(self, step: int) -> dict:
        step = require_step(step)
        with self._lock:
            m = self._models.pop(step, None)
            if m is None:
                raise ModelNotLoaded(step, sorted(self._models))
        _free_device_memory()
        return {"ok": True, "unloaded": step, "model": m.name, "loaded": self.steps()}

    def _load_weights(self, path: Path):
        return load_model_and_tokenizer(path, self.dtype, "sdpa", threads=self.threads, inference=True)

    # -- chat ------------------------------------------------------------------------
    def check_prompt(self, step: int, messages: list[dict], sampling: Sampling) -> int:
        """Prompt tokens, or an OracleError when prompt + reply exceed the model's context."""
        m = self.get(require_step(step))
        ids = m.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"]
        limit = getattr(m.model.config, "max_position_embeddings", None)
        if limit and len(ids) + sampling.max_new_tokens > limit:
            raise OracleError(f"prompt is {len(ids)} tokens; with max_new_tokens "
                              f"{sampling.max_new_tokens} that is over {m.name}'s context of {limit}")
        return len(ids)

    def stream(self, step: int, messages: list[dict], sampling: Sampling | None = None) -> Iterator[dict]:
        """Events: one `start` (which model answers), `token`s as they come, one `done`."""
        import torch

        m = self.get(require_step(step))
        sampling = sampling or Sampling()
        tok = m.tokenizer
        inputs = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)
        inputs = {k: v.to(m.model.device) for k, v in inputs.items()}
        prompt_tokens = int(inputs["input_ids"].shape[1])
        streamer = TokenBatches(tok)
        out: dict[str, Any] = {}
        failure: list[BaseException] = []

        extra = {"stop_strings": list(sampling.stop), "tokenizer": tok} if sampling.stop else {}

        def run() -> None:
            try:
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                with torch.inference_mode():
                    out["ids"] = m.model.generate(
                        **inputs, streamer=streamer, eos_token_id=eos_ids(tok, m.model),
                        pad_token_id=tok.pad_token_id, **sampling.generate_kwargs(), **extra)
            except BaseException as e:  # reported to the caller, not lost in the thread
                failure.append(e)
            finally:
                # Whatever generate() did with the streamer (a model's own generate may
                # never call end()), the reader stops when this thread does.
                streamer.end()

        t0 = time.perf_counter()
        yield {"type": "start", **self._identity(m)}
        worker = threading.Thread(target=run, name=f"oracle-generate-{step}", daemon=True)
        worker.start()
        ttft = None
        scan = StopScanner(sampling.stop)
        for piece in streamer:
            text = scan.feed(piece)
            if text:
                ttft = ttft if ttft is not None else time.perf_counter() - t0
                yield {"type": "token", "text": text}
        worker.join()
        if failure:
            raise RemoteError(f"generation on {m.name} failed: {failure[0]}") from failure[0]
        if not scan.stopped and (text := scan.flush()):
            yield {"type": "token", "text": text}
        new = out["ids"][0, prompt_tokens:].tolist()
        eos = set(eos_ids(tok, m.model))
        finish = "stop" if scan.stopped or (new and new[-1] in eos) else "length"
        # The reply is the streamed text: cut before the first stop string, when one came.
        content = scan.text if sampling.stop else tok.decode(new, skip_special_tokens=True)
        yield {"type": "done", **self._identity(m), "content": content, "finish_reason": finish,
               "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(new),
                         "total_tokens": prompt_tokens + len(new)},
               "seconds": round(time.perf_counter() - t0, 4),
               "ttft_seconds": round(ttft, 4) if ttft is not None else None}

    @staticmethod
    def _identity(m: LoadedModel) -> dict:
        return {"host": LOCAL, "step": m.step, "model": m.name, "model_path": str(m.path)}


def _free_device_memory() -> None:
    import gc
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def final_reply(events: Iterator[dict]) -> dict:
    """Drain a stream into one reply (the `done` event, plus ok/success flags)."""
    done: dict | None = None
    for ev in events:
        if ev["type"] == "done":
            done = ev
    if done is None:
        raise RemoteError("the answer stream ended without a final event")
    reply = {k: v for k, v in done.items() if k != "type"}
    return {"ok": True, "success": True, **reply}


class Oracle:
    """The local pool and the remote hosts behind one strict interface."""

    def __init__(self, locate: Locator, pool: ModelPool, remotes: Callable[[], dict[str, Any]],
                 checkpoints: Callable[[], list[dict]]) -> None:
        self.locate, self.pool, self._remotes, self._checkpoints = locate, pool, remotes, checkpoints

    def remote(self, host: str):
        remotes = self._remotes()
        if host not in remotes:
            raise UnknownCheckpoint(f"no inference host {host!r}; hosts: {[LOCAL, *sorted(remotes)]}")
        return remotes[host]

    def hosts(self) -> list[str]:
        return [LOCAL, *sorted(self._remotes())]

    def checkpoints(self) -> list[dict]:
        """What can be loaded: step 0 (the base model) and every checkpoint in the ledger."""
        return self._checkpoints()

    def status(self) -> dict:
        hosts = {LOCAL: self.pool.status()}
        for name, r in sorted(self._remotes().items()):
            hosts[name] = r.status()
        return {"hosts": hosts}

    def load(self, step: Any, host: str | None = None) -> dict:
        step = require_step(step)
        if host in (None, "", LOCAL):
            return {"ok": True, "host": LOCAL, **self.pool.load(step)}
        return {"ok": True, **self.remote(host).load(step)}

    def unload(self, step: Any, host: str | None = None) -> dict:
        step = require_step(step)
        if host in (None, "", LOCAL):
            return {"host": LOCAL, **self.pool.unload(step)}
        return self.remote(host).unload(step)

    def stream(self, step: Any, message: Any = None, messages: Any = None, host: str | None = None,
               sampling: dict | Sampling | None = None) -> Iterator[dict]:
        """Validate everything before the first event, so errors are plain exceptions."""
        step = require_step(step)
        turns = check_chat_size(chat_messages(message, messages))
        s = sampling if isinstance(sampling, Sampling) else Sampling.from_dict(sampling)
        if host in (None, "", LOCAL):
            self.pool.check_prompt(step, turns, s)  # ModelNotLoaded / too long: before any event
            return self.pool.stream(step, turns, s)
        return self.remote(host).stream(step, turns, s)

    def chat(self, step: Any = None, message: Any = None, messages: Any = None, host: str | None = None,
             sampling: dict | Sampling | None = None) -> dict:
        return final_reply(self.stream(step, message, messages, host, sampling))
