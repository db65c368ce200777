"""A quest is checked at the realm's own validation depth (realm.toml [quests]
validation_depth), in seconds, through the daemon's admission and the one publish path:
an example over the hero's token limit passes a standard check and is refused at "deep".
(test_hostile_input.py drops it into a running daemon: slow.)"""

from __future__ import annotations

import json

import pytest

from realm_kernel.quests.admission import check_quest
from realm_kernel.quests.formats import QuestError
from realm_kernel.quests.publish import publish
from realm_kernel.services.daemon import Daemon
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger

from ..helpers import TEST_TOML, make_home

LONG = {"messages": [{"role": "user", "content": " ".join(["seven"] * 600)},
                     {"role": "assistant", "content": "ok"}]}
REFUSAL = "tokens, over the hero's limit of 128"


def realm_at(tmp_path, dio_mini_dir, depth: str):
    return make_home(tmp_path / depth, dio_mini_dir,
                     TEST_TOML + f'\n[quests]\nvalidation_depth = "{depth}"\n')


@pytest.mark.parametrize("depth", ["standard", "deep"])
def test_the_daemon_admits_at_the_realms_own_depth(tmp_path, dio_mini_dir, depth):
    paths = realm_at(tmp_path, dio_mini_dir, depth)
    daemon = Daemon(paths.home)
    daemon.reload_config()
    quest = paths.inbox / "long.jsonl"
    quest.write_text(json.dumps(LONG) + "\n")
    daemon.admit(quest)
    failed = {json.loads(f.read_text())["file"]: json.loads(f.read_text())
              for f in paths.queue("failed").glob("*.reason.json")}
    if depth == "deep":
        assert REFUSAL in failed["long.jsonl"]["summary"], failed
        assert not (paths.queue("normal") / "long.jsonl").exists()
    else:  # a standard check does not count tokens: the same file is admitted
        assert failed == {} and (paths.queue("normal") / "long.jsonl").is_file()


def test_check_and_publish_take_the_depth_from_realm_toml(tmp_path, dio_mini_dir):
    paths = realm_at(tmp_path, dio_mini_dir, "deep")
    config, ledger = load_config(paths.home), Ledger(paths, "test")
    staged = tmp_path / "long.jsonl"
    staged.write_text(json.dumps(LONG) + "\n")
    _, report = check_quest(staged, config, paths, ledger)
    assert report.depth == "deep" and REFUSAL in report.summary()
    assert check_quest(staged, config, paths, ledger, "standard")[1].ok, "an explicit depth wins"
    with pytest.raises(QuestError, match=REFUSAL):
        publish(paths, ledger, config, "long.jsonl", [LONG])
    assert not list(paths.inbox.glob("*.jsonl")), "nothing is left behind"
