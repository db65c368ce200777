"""Quest formats users bring from LLaMA-Factory and Axolotl: ShareGPT and Alpaca files,
HF `datasets` folders (save_to_disk) and hub datasets from the local cache, each turned
into the chat examples the trainer uses, and each bad row named with its place."""

import json

import pytest

from realm_kernel.api import Realm
from realm_kernel.quests.datasets import dataset_examples
from realm_kernel.quests.formats import QuestError, load_quest

SHAREGPT = [
    {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "2+2?"},
                       {"from": "gpt", "value": "4"}]},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "beep"}]},
]
ALPACA = [
    {"instruction": "Add the numbers.", "input": "2 3", "output": "5"},
    {"instruction": "Say hi.", "input": "", "output": "hi", "system": "Be kind."},
    {"instruction": "Empty answer.", "input": "", "output": " "},
]
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sharegpt_and_alpaca_files_become_chat_with_errors_by_line(tmp_path):
    examples, report = load_quest(write_jsonl(tmp_path / "share.jsonl", SHAREGPT[:1]))
    assert report.ok and examples[0]["messages"] == CHAT
    _, report = load_quest(write_jsonl(tmp_path / "share-bad.jsonl", SHAREGPT))
    assert not report.ok and "line 2: conversations[1].from is 'robot'" in report.summary()
    assert report.summary().startswith("share-bad.jsonl: ")

    examples, report = load_quest(write_jsonl(tmp_path / "alpaca.jsonl", ALPACA[:2]))
    assert report.ok and report.specs == {"chat": 2}
    assert examples[0]["messages"] == [{"role": "user", "content": "Add the numbers.\n\n2 3"},
                                       {"role": "assistant", "content": "5"}]
    assert examples[1]["messages"][0] == {"role": "system", "content": "Be kind."}
    _, report = load_quest(write_jsonl(tmp_path / "alpaca-bad.jsonl", ALPACA))
    assert "line 3: Alpaca needs a non-empty 'instruction' and 'output'" in report.summary()
    _, report = load_quest(write_jsonl(tmp_path / "odd.jsonl", [{"text": "raw"}]))
    assert "ShareGPT" in report.summary() and "Alpaca" in report.summary()


def test_datasets_folder_and_cached_hub_dataset_become_quests(realm_home, tmp_path, monkeypatch):
    import datasets
    saved = tmp_path / "alpaca-ds"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ALPACA[:2]),
                          "test": datasets.Dataset.from_list(ALPACA[:1])}).save_to_disk(str(saved))
    examples, report = dataset_examples(str(saved))  # the train split by default
    assert report.examples == 2 and examples[0]["messages"][-1] == {"role": "assistant", "content": "5"}
    assert len(dataset_examples(str(saved), "test")[0]) == 1
    with pytest.raises(ValueError, match="split 'dev' not found; splits: test, train"):
        dataset_examples(str(saved), "dev")
    bad = tmp_path / "bad-ds"
    datasets.Dataset.from_list(ALPACA).save_to_disk(str(bad))
    with pytest.raises(QuestError, match=r"bad-ds: row 3: Alpaca needs a non-empty"):
        dataset_examples(str(bad))
    with pytest.raises(ValueError, match="not a folder written by datasets' save_to_disk"):
        dataset_examples(str(tmp_path))

    # A hub dataset in the local cache (the layout huggingface_hub writes); never fetched.
    cache = tmp_path / "hub"
    repo = cache / "datasets--realm--sharegpt-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    write_jsonl(snap / "train.jsonl", SHAREGPT[:1] * 3)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    examples, _ = dataset_examples("realm/sharegpt-tiny")
    assert [e["messages"] for e in examples] == [CHAT] * 3
    with pytest.raises(ValueError, match="not in the local Hugging Face cache"):
        dataset_examples("realm/not-downloaded")

    # Through the Realm: a .jsonl quest in the inbox, validated like any other.
    out = Realm(realm_home.home).quests.import_dataset("realm/sharegpt-tiny")
    quest = realm_home.inbox / out["name"]
    assert out["rows"] == 3 and quest.name == "realm__sharegpt-tiny.jsonl"
    assert [json.loads(line)["messages"] for line in quest.read_text().splitlines()] == [CHAT] * 3
