"""Quest admission: the checks the daemon, the API and `realm quest validate` share, so
all three give the same report for the same file."""

from __future__ import annotations

from pathlib import Path

from ..store.config import RealmConfig
from ..store.ledger import Ledger, latest_checkpoint
from ..store.paths import PRIORITIES, SIDECAR, RealmPaths, read_json
from ..store.vault import carries_resume_state, run_finished
from .formats import Depth, QuestReport, TokenCounter, limits_of, validate_quest
from .queue import list_queue

# A quest in one of these states blocks a second copy of the same file.
LIVE_STATES = ("queued", "processing", "completed")


def known_quests(ledger: Ledger) -> dict[str, str]:
    """sha256 -> quest name, for quests queued, in training or completed."""
    rows = ledger.query(
        "SELECT DISTINCT q.sha256, s.quest_id FROM quests q JOIN quest_status s USING (quest_id) "
        f"WHERE q.sha256 IS NOT NULL AND s.status IN {LIVE_STATES}")
    return {r["sha256"]: r["quest_id"] for r in rows}


def hero_model_path(ledger: Ledger, config: RealmConfig, paths: RealmPaths) -> Path:
    """The hero's current weights: the newest checkpoint, else the base model."""
    latest = latest_checkpoint(ledger)
    return latest[1] if latest else config.base_model_path(paths)


def resume_point(ledger: Ledger, quest: str, run_id: str | None) -> tuple[Path, int] | None:
    """Where an interrupted run of `quest` picks up: (checkpoint, step offset) when the
    hero's newest checkpoint was saved by that run and holds the trainer state (optimizer,
    scheduler, data position), or is that run's final, weights-only save (trained to its
    max_steps: resuming trains nothing and ends the quest). None when training moved on
    since: the quest then starts again on the newest weights."""
    latest = latest_checkpoint(ledger)
    if not latest or not run_id:
        return None
    step, path = latest
    sidecar = read_json(path / SIDECAR, {}) or {}
    state = read_json(path / "trainer_state.json", {}) or {}
    if sidecar.get("training_file") != quest or sidecar.get("run_id") != run_id:
        return None
    if "global_step" not in state:
        return None
    finished = run_finished(int(state.get("max_steps") or 0), int(state["global_step"]))
    if not finished and not carries_resume_state(path):
        return None
    return path, step - int(state["global_step"])


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
