"""kill -9 the daemon at named points (during a step, a checkpoint save, a queue move, a
ledger write), 10 times on one realm, then let it finish: nothing lost or doubled, the
ledger and the disk agree, every restart resumed from the last complete checkpoint."""

import json
import os

import pytest

from realm_kernel.api import Realm

from .harness import CI_SCHEDULE, FAULT_TOML, check_realm, crash, finish, schedule, sha

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
SEED = int(os.environ.get("REALM_FAULT_SEED", "20261126"))


def test_ten_kill_9_faults_lose_nothing(realm_home, procs, capsys):
    realm_home.config_file.write_text(FAULT_TOML)
    realm = Realm(realm_home.home)
    quests = {}
    for i, count in enumerate((250, 300, 200)):
        q = realm.quests.generate("bin", 1, count, seed=100 + i)
        quests[q.name] = sha(q)
    kills = [crash(procs, realm_home, fault, i) for i, fault in enumerate(schedule(SEED, 10, CI_SCHEDULE))]
    finish(procs, realm_home, quests)
    report = check_realm(realm_home, quests, kills, realm_home.dio_mini)
    with capsys.disabled():
        print(f"\nseed {SEED}: " + json.dumps({k: v for k, v in report.items() if k != "kills"}))
        for k in report["kills"]:
            print(f"  {k['fault']:36s} reached={k['reached']} at {k['point']} ({k['seconds']:.1f}s)")
    assert report["problems"] == []
    assert report["reached"] == len(kills), [k["fault"] for k in report["kills"] if not k["reached"]]
    assert report["runs_checked"] >= 5
