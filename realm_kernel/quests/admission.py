"""Quest admission: the checks the daemon, the API and `realm quest validate` share, so
all three give the same report for the same file."""

from __future__ import annotations

from pathlib import Path

from ..store.checkpoints import hero_model_path
from ..store.config import RealmConfig
from ..store.ledger import Ledger
from ..store.paths import PRIORITIES, RealmPaths
from ..store.queries import quest_hashes
from .formats import Depth, QuestReport, TokenCounter, limits_of, validate_quest
from .queue import list_queue

# A quest in one of these states blocks a second copy of the same file.
LIVE_STATES = ("queued", "processing", "completed")


def known_quests(ledger: Ledger) -> dict[str, str]:
    """sha256 -> quest name, for quests queued, in training or completed."""
    return {r["sha256"]: r["quest_id"] for r in quest_hashes(ledger, LIVE_STATES)}


def tokenizer_counter(model_path: Path) -> tuple[TokenCounter, int | None]:
    """Token lengths of chat examples as the engine renders them, and the model's max."""
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model_max = getattr(AutoConfig.from_pretrained(model_path), "max_position_embeddings", None)

    def count(batch: list[list[dict]]) -> list[int]:
        texts = [tok.apply_chat_template(m, tokenize=False) for m in batch]
        return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]

    return count, model_max


def check_quest(path: Path, config: RealmConfig, paths: RealmPaths, ledger: Ledger,
                depth: Depth | str | None = None, *, duplicates: bool = True,
                admitted_as: str | None = None) -> tuple[list[dict], QuestReport]:
    """Validate a quest at `depth` (default: realm.toml [quests] validation_depth). A quest
    already admitted under the name `admitted_as` is no duplicate of its own ledger row."""
    depth = Depth(depth or config.quests.validation_depth)
    known = known_quests(ledger) if duplicates and config.quests.reject_duplicates else None
    if known and admitted_as:
        known = {sha: name for sha, name in known.items() if name != admitted_as}
    count, limit = None, None
    if depth is Depth.DEEP:
        count, model_max = tokenizer_counter(hero_model_path(ledger, config, paths))
        limit = min(config.training.max_length, model_max or config.training.max_length)
    return validate_quest(path, depth, limits_of(config), known=known, count_tokens=count,
                          token_limit=limit)


def validate_queue(paths: RealmPaths, config: RealmConfig, ledger: Ledger) -> list[dict]:
    """The daemon's report for every queued quest (nothing is moved)."""
    out = []
    for state, entries in list_queue(paths).items():
        if state not in PRIORITIES:
            continue
        for e in entries:
            try:
                _, rep = check_quest(paths.queue(state) / e["name"], config, paths, ledger,
                                     admitted_as=e["name"])
            except FileNotFoundError:
                continue  # trained meanwhile
            out.append({"quest": e["name"], "priority": state, "ok": rep.ok,
                        "examples": rep.examples, "summary": rep.summary()})
    return out
