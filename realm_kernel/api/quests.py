"""`realm.quests`: quest files into the realm and the queue's order (the daemon trains
them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..evals import practice
from ..quests.admission import check_quest, validate_queue
from ..quests.formats import QuestReport
from ..quests.publish import publish, quest_row, record, withdraw
from ..quests.queue import list_queue, reorder, set_priority, waiting
from ..store import queries
from ..store.home import Home


class Quests:
    def __init__(self, home: Home) -> None:
        self.home = home

    def validate(self, path: str | os.PathLike, depth: str | None = None) -> QuestReport:
        """The report the daemon would give this file (duplicates checked against the
        ledger too)."""
        h = self.home
        return check_quest(Path(path), h.config, h.paths, h.ledger, depth)[1]

    def add(self, source: str | os.PathLike, name: str | None = None,
            priority: str | None = None) -> dict:
        """Validate a quest file and drop it into the inbox (the daemon re-checks it)."""
        src = Path(source)
        h = self.home
        return publish(h.paths, h.ledger, h.config, name or src.name,
                       lambda dest: shutil.copyfile(src, dest), priority=priority)

    def import_dataset(self, source: str, split: str | None = None, name: str | None = None,
                       priority: str | None = None) -> dict:
        """A HF `datasets` folder (save_to_disk) or a cached hub dataset id as a .jsonl
        quest in the inbox (every row checked and converted to chat examples first)."""
        from ..quests.datasets import dataset_examples
        from ..quests.formats import limits_of, safe_name
        h = self.home
        examples, report = dataset_examples(source, split, limits_of(h.config))
        name = name or safe_name(source.replace("/", "__")) + (f"-{split}" if split else "") + ".jsonl"
        out = publish(h.paths, h.ledger, h.config, name, examples, priority=priority)
        return {**out, "source": source, "rows": report.examples}

    def upload(self, name: str, data: bytes, priority: str | None = None) -> dict:
        """The same for bytes (a REST upload)."""
        h = self.home
        return publish(h.paths, h.ledger, h.config, name, lambda dest: dest.write_bytes(data),
                       priority=priority)

    def set_priority(self, name: str, priority: str) -> dict:
        dest = set_priority(self.home.paths, name, priority)
        record(self.home.ledger, [quest_row(dest, "queued", priority, detail=f"priority set to {priority}")])
        return {"ok": True, "name": dest.name, "priority": priority}

    def move(self, name: str, position: int) -> dict:
        """Put a waiting quest at `position` (0 = next) within its priority."""
        order = reorder(self.home.paths, name, position)
        return {"ok": True, "name": name, "order": order}

    def remove(self, name: str) -> dict:
        return withdraw(self.home.paths, self.home.ledger, name)

    def generate(self, skill: str, level: int, count: int, seed: int | None = None) -> Path:
        """`count` problems of a skill level into the inbox."""
        return practice.skill_quest(self.home, skill, level, count, seed)

    def queue(self) -> dict:
        return list_queue(self.home.paths)

    def waiting(self) -> int:
        return waiting(self.home.paths)

    def sizes(self) -> dict[str, int]:
        """Examples per quest name, as admission counted them."""
        return queries.quest_sizes(self.home.ledger)

    def validate_queue(self) -> list[dict]:
        """The daemon's report for every queued quest (nothing is moved)."""
        h = self.home
        return validate_queue(h.paths, h.config, h.ledger)
