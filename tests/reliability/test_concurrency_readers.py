"""The daemon writes metrics and checkpoints while the Panel app's poller, the Jupyter
REST API, a notebook's read-only DuckDB connection and the Task Master's reads (and
writes) all run for a bounded time: no reader error reaches a user, no write is lost,
p99 poll latency reported. (`taskmaster` is the Task Master's reads through the Realm
API, `Realm.tasks()` included, and a `tasks` row written per poll.)"""

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.status import TRAINING, read_status

from ..helpers import TEST_TOML, TOKEN, make_home, start_daemon, start_lab, wait_for
from .harness import run_readers

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
SECONDS = 15
MIN_POLLS = 5  # each reader polls at least this often, however loaded the machine


def test_readers_never_see_an_error_and_no_write_is_lost(tmp_path_factory, dio_mini_dir,
                                                         module_procs, capsys):
    paths = make_home(tmp_path_factory.mktemp("realm"), dio_mini_dir, TEST_TOML)
    realm = Realm(paths.home)
    realm.quests.generate("bin", 1, 6000, seed=51)
    _, base = start_lab(module_procs, paths, tmp_path_factory.mktemp("runtime"), root_dir=paths.home,
                        REALM_WEAVER="0")
    start_daemon(module_procs, paths)
    wait_for(lambda: (read_status(paths, TRAINING).get("local_step") or 0) > 3, 120, "training")
    step0 = read_status(paths, TRAINING)["step"]
    reports = run_readers(module_procs, paths, base, TOKEN, SECONDS, min_polls=MIN_POLLS)
    realm.training.control("stop")
    wait_for(lambda: read_status(paths, TRAINING).get("state") == "stopped", 120, "the stop")
    top = realm.ledger.scalar("SELECT max(step) FROM metrics")
    assert top > step0, "training went on under the readers"
    for kind, r in reports.items():
        assert r["errors"] == 0, (kind, r["first_errors"])
        assert r["polls"] >= MIN_POLLS and r["dips"] == 0, r
    # No write lost: every step has its loss row; every tasks row written is found.
    logged = {r["step"] for r in realm.sql("SELECT DISTINCT step FROM metrics WHERE loss IS NOT NULL")}
    assert logged == set(range(1, top + 1))
    written = reports["taskmaster"]["written"]
    assert realm.ledger.scalar("SELECT count(*) FROM tasks WHERE name = 'probe'") == written > 0
    with capsys.disabled():
        print(f"\nconcurrency ({SECONDS}s, {top - step0} steps trained meanwhile):")
        for kind, r in reports.items():
            print(f"  {kind:10s} polls={r['polls']:4d} errors={r['errors']} p50={r['p50_ms']:.1f}ms "
                  f"p99={r['p99_ms']:.1f}ms max={r['max_ms']:.1f}ms")
