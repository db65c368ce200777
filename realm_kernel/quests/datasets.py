"""HF `datasets` as quests: a folder written by `save_to_disk`, or a hub dataset id found
in the local Hugging Face cache (never downloaded here). Each row goes through the same
example check as a quest file (OpenAI messages, prompt/completion, ShareGPT, Alpaca), so
a bad row is reported by its source, split, row number and problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..hero_model import hub
from .formats import Limits, QuestError, QuestReport, check_example, example_spec, text_problem

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SAVED_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")


def open_dataset(source: str, split: str | None = None) -> tuple[str, Any]:
    """(label, rows) of one split of a saved folder or a cached hub dataset."""
    import datasets

    path = Path(source).expanduser()
    if path.is_dir():
        if not any((path / m).is_file() for m in SAVED_MARKERS):
            raise ValueError(f"{path}: not a folder written by datasets' save_to_disk "
                             f"(none of {', '.join(SAVED_MARKERS)})")
        data = datasets.load_from_disk(str(path))
    elif HUB_ID.match(source) and not path.exists():
        local = hub.cached(source, repo_type="dataset")
        if local is None:
            raise ValueError(f"{source}: no such folder, and not in the local Hugging Face cache "
                             f"({hub.cache_dir()}); download it there first "
                             "(`hf download --repo-type dataset ...`): nothing is fetched at run time")
        data = datasets.load_dataset(str(local))
    else:
        raise ValueError(f"{source}: no such folder, and not a hub dataset id (owner/name)")
    if isinstance(data, datasets.DatasetDict):
        names = sorted(data)
        pick = split or ("train" if "train" in data else names[0] if len(names) == 1 else None)
        if pick not in data:
            raise ValueError(f"{source}: split {split!r} not found; splits: {', '.join(names)}"
                             if split else f"{source}: several splits ({', '.join(names)}); choose one")
        return f"{Path(source).name or source} ({pick})", data[pick]
    if split:
        raise ValueError(f"{source}: a single dataset without splits; leave out the split")
    return Path(source).name or source, data


def dataset_examples(source: str, split: str | None = None,
                     limits: Limits | None = None) -> tuple[list[dict], QuestReport]:
    """Every row checked and converted to chat examples; QuestError names the bad rows."""
    limits = limits or Limits()
    label, rows = open_dataset(source, split)
    report = QuestReport(file=label)
    if len(rows) > limits.max_examples:
        report.add(None, f"{len(rows)} rows, over the {limits.max_examples}-example limit")
        raise QuestError(report)
    examples = []
    for i, row in enumerate(rows, start=1):
        row = {k: v for k, v in row.items() if v is not None}  # columns other formats leave empty
        ex, why = check_example(row)
        if not why:
            spec, why = example_spec(row if "meta" in row else {**row, "meta": {}}, limits.specs)
            why = why or text_problem(ex, limits.max_example_chars)
            if not why:
                report.specs[spec] = report.specs.get(spec, 0) + 1
        if why:
            report.add(None, f"row {i}: {why}")
        else:
            examples.append(ex)
    if report.ok and not examples:
        report.add(None, "no rows")
    if not report.ok:
        raise QuestError(report)
    report.examples = len(examples)
    return examples, report
