"""The fixed held-out sets: per skill level, examples made once (train/def_set.py, a fixed
seed), stored in heldout/<skill>-L<level>.jsonl and never replaced, never trained on (the
engine drops any training example whose hash is in the set). Their loss, scored at every
save, is DEF: the same examples every day, whatever the quest mix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable

from .confine import confine
from .paths import RealmPaths, atomic_write_text


def example_hash(example: dict) -> str:
    """The hash of what an example trains on: its messages, canonical JSON."""
    text = json.dumps(example.get("messages"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def hashes(examples: Iterable[dict]) -> set[str]:
    return {example_hash(e) for e in examples}


def fixed_set(paths: RealmPaths, skill: str, level: int,
              make: Callable[[], list[dict]]) -> list[dict]:
    """The skill level's fixed held-out set: read from the realm, else made once by `make`
    and stored (a file once written is never replaced)."""
    # The skill comes from a quest's meta: its file stays inside heldout/ (store/confine.py).
    path = confine(paths.heldout, f"{skill}-L{int(level)}.jsonl", what="the fixed held-out set")
    if not path.is_file():
        examples = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
