"""Cluster mode (docs/cluster.md): without [cluster] the realm imports no Ray; with it, a
real Ray cluster of two nodes on this machine (a trainer head and an eval node, started
and stopped here, 127.0.0.1 only, no dashboard, usage statistics off) answers evals on the
eval node, never on the trainer; the Task Master's side records each eval once, also
when the eval node dies mid-eval (the task runs again on another node) and when every
eval node is gone (this machine answers)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from realm_kernel.api import Realm
from realm_kernel.cli import app
from realm_kernel.services import gpu_yield
from realm_kernel.services.taskmaster import TaskMaster
from realm_kernel.store.paths import SIDECAR, atomic_write_json
from realm_kernel.store.vault import discover_fs
from realm_kernel.store.zone_copy import open_zone
from realm_widgets.pages import SchedulerSession

from ..helpers import TEST_TOML, child_env, make_home, wait_for
from .test_gpu_yield import BUSY
from .test_taskmaster import fake_nvml

# What every process the tests start inherits: no usage statistics, and a node address
# that stays on loopback (Ray would otherwise ask the routing table for the machine's
# outward address and use that for the head's GCS).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
EVAL_SIZE = 4  # problems per eval: the answers are real, the cost small on 2 cores


def make_checkpoint(realm: Realm, step: int) -> Path:
    """A checkpoint published as the engine publishes one (dio-mini's weights, a sidecar,
    the checkpoint ledger row and its eval request)."""
    name = f"checkpoint-{step}-{datetime.now():%Y%m%d-%H%M%S}"
    dest = realm.paths.checkpoints / name
    shutil.copytree(realm.paths.dio_mini, dest)
    atomic_write_json(dest / SIDECAR, {"name": name, "step": step, "skill": "bin", "skill_level": 1})
    realm.ledger.append("checkpoints", [{"step": step, "name": name, "path": str(dest),
                                         "skill": "bin", "skill_level": 1}])
    realm.ledger.event("eval_requested", f"Evaluate {name}", json.dumps(
        {"checkpoint": name, "step": step, "path": str(dest), "skill": "bin", "level": 1}))
    return dest


def evals_of(realm: Realm, name: str) -> int:
    return realm.ledger.scalar("SELECT count(*) FROM evals WHERE checkpoint = ?", [name])


# -- cluster mode off -------------------------------------------------------------------
NO_RAY = """
import sys
from realm_kernel.api import Realm
from realm_kernel.services.daemon import Daemon
from realm_kernel.services.taskmaster import TaskMaster
from realm_widgets.pages import SchedulerSession
home = sys.argv[1]
realm = Realm(home)
tm = TaskMaster(home); tm.reload_config(); tm.pick()
daemon = Daemon(home); daemon.reload_config()
assert realm.tasks.cluster()["engine"] == "local"
assert SchedulerSession(realm).snapshot()["cluster"]["engine"] == "local"
print("RAY MODULES:", sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
"""


def test_cluster_mode_off_imports_no_ray(realm_home):
    """The realm, the Task Master's pick, the daemon and the Scheduler page in a fresh
    process without [cluster]: not one Ray module is imported."""
    out = subprocess.run([sys.executable, "-c", NO_RAY, str(realm_home.home)], capture_output=True,
                         text=True, env=child_env(realm_home.home), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RAY MODULES: []" in out.stdout, out.stdout[-2000:]


def test_cluster_status_without_cluster_says_one_machine(realm_home):
    res = CliRunner().invoke(app, ["--home", str(realm_home.home), "cluster", "status"])
    assert res.exit_code == 0, res.output
    assert "engine: local" in res.output and "one machine" in res.output


def test_a_bad_cluster_section_names_the_key(realm_home):
    realm_home.config_file.write_text(TEST_TOML + '\n[cluster]\nengine = "slurm"\n')
    res = CliRunner().invoke(app, ["--home", str(realm_home.home), "cluster", "status"])
    assert res.exit_code == 2 and "cluster.engine" in res.output, res.output


# -- a real two-node Ray cluster ----------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head (the trainer: realm_trainer) and one eval node (realm_inference), one CPU
    each, on 127.0.0.1; stopped after the module."""
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "resources": {"realm_trainer": 1}})
    # This process (the Task Master's side) joins now, while the head is the only raylet
    # on 127.0.0.1: later Ray would pick any raylet of that address, perhaps an eval node
    # the tests kill (Ray refuses to remove the driver's own node).
    from realm_kernel.oracle.cluster import connect
    from realm_kernel.store.config import ClusterConfig
    connect(ClusterConfig(engine="ray", address=cluster.address))
    cluster.eval_node = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1",
                                         resources={"realm_inference": 1})
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def cluster_toml(cluster, cache: Path) -> str:
    """realm.toml's [cluster] for the test cluster: CPU-only eval nodes, a node cache."""
    return f"""
[cluster]
engine = "ray"
address = "{cluster.address}"
gpus_per_task = 0
cache_dir = "{cache}"
"""


@pytest.fixture
def cluster_realm(realm_home, ray_cluster, tmp_path):
    realm_home.config_file.write_text(TEST_TOML + cluster_toml(ray_cluster, tmp_path / "node-cache"))
    return Realm(realm_home.home, writer="taskmaster")


@pytest.mark.slow
def test_evals_run_on_the_eval_node_and_each_is_recorded_once(cluster_realm, ray_cluster, tmp_path):
    realm = cluster_realm
    a, b = make_checkpoint(realm, 10), make_checkpoint(realm, 20)
    out = realm.checkpoints.evaluate_pending(size=EVAL_SIZE)
    assert [o["status"] for o in out] == ["done", "done"], out
    # Answered on the eval node, never on the trainer (the head offers no realm_inference).
    assert {o["node_id"] for o in out} == {ray_cluster.eval_node.node_id}
    assert evals_of(realm, a.name) == evals_of(realm, b.name) == 1
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'eval_done'") == 2
    # Each checkpoint was fetched onto the node by step, into its cache.
    assert sorted(p.name for p in (tmp_path / "node-cache").iterdir()) == sorted([a.name, b.name])
    # Nothing left to do, and nothing recorded twice.
    assert realm.checkpoints.evaluate_pending(size=EVAL_SIZE) == []
    assert realm.ledger.scalar("SELECT count(*) FROM evals") == 2
    # The status: the trainer head and the eval node, each with its role and resources.
    status = realm.tasks.cluster()
    roles = {n["node_id"]: n["roles"] for n in status["nodes"] if n["alive"]}
    assert roles[ray_cluster.eval_node.node_id] == ["inference"]
    assert ["trainer"] in roles.values() and status["placeable"] is True
    res = CliRunner().invoke(app, ["--home", str(realm.paths.home), "cluster", "status"])
    assert res.exit_code == 0 and "roles: inference" in res.output and "realm_inference 1" in res.output
    page = SchedulerSession(realm).snapshot()["cluster"]
    assert {n["node_id"] for n in page["nodes"]} >= {ray_cluster.eval_node.node_id}


@pytest.mark.slow
def test_a_busy_training_card_gets_no_eval_while_an_eval_node_is_up(cluster_realm, monkeypatch):
    """NVML says the trainer's card is 95% busy: on one machine the eval would wait and
    ask the daemon for the card; with an eval node up the Task Master takes it at once
    and asks for nothing."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(BUSY))
    realm = cluster_realm
    make_checkpoint(realm, 50)
    (realm.paths.queue("normal") / "next.jsonl").write_text(json.dumps(  # DIO is not starving
        {"messages": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"}]}) + "\n")
    tm = TaskMaster(realm.paths.home)
    tm.reload_config()
    assert tm.pick() == ("process_eval_queue", "1 checkpoint(s) await their eval")
    assert gpu_yield.current(realm.paths) is None
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'gpu_yield_asked'") == 0


@pytest.mark.slow
def test_a_quest_is_generated_on_the_eval_node_as_here_and_published_once(
        cluster_realm, ray_cluster, tmp_path, dio_mini_dir):
    """The curriculum's quest rows are made on the eval node; the same seed on a realm
    without [cluster] makes the same rows here; the quest is published once, here."""
    realm = cluster_realm
    made = realm.skills.curriculum_quest(seed=5)
    assert made["node_id"] == ray_cluster.eval_node.node_id and made["host"] != "local"
    here = Realm(make_home(tmp_path / "one-machine", dio_mini_dir).home)
    local = here.skills.curriculum_quest(seed=5)
    assert "node_id" not in local and "host" not in local
    assert {k: v for k, v in made.items() if k not in ("quest", "node_id", "host")} == {
        k: v for k, v in local.items() if k != "quest"}
    assert (realm.paths.inbox / made["quest"]).read_text() == \
        (here.paths.inbox / local["quest"]).read_text()
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'quest_generated'") == 1
    assert [p.name for p in realm.paths.inbox.glob("*.jsonl")] == [made["quest"]]
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'cluster_fallback'") == 0


@pytest.mark.slow
def test_the_vault_scan_reads_the_shared_zone_on_the_eval_node_and_records_it_once(
        cluster_realm, ray_cluster, tmp_path):
    """The vault scan task: the realm home here, the shared zone read on the eval node;
    its catalogue, written here, is what a discovery on this machine finds there."""
    realm = cluster_realm
    nas = tmp_path / "nas"
    shutil.copytree(realm.paths.dio_mini, nas / "checkpoints" / "checkpoint-7-20261206-120000")
    (nas / "data").mkdir()
    (nas / "data" / "train.jsonl").write_text('{"text": "hi"}\n')
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    out = realm.scan_vault()
    assert out["zone"] == "local" and out["node_id"] == ray_cluster.eval_node.node_id, out
    assert out["shared"]["nas"]["found"] == {"checkpoint": 1, "data": 1}, out
    here = sorted(tuple(f) for f in discover_fs(*open_zone(f"file://{nas}")))
    rows = realm.ledger.query("SELECT type, path, bytes FROM assets WHERE zone = 'nas'")
    assert sorted((r["type"], r["path"], r["bytes"]) for r in rows) == here  # once each
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'vault_scan'") == 2


# The idle loop as `realm play --headless` runs it (the Weaver, the real daemon and the
# real Task Master), made cheap: BIN alone on the curriculum, small evals, none of the
# tasks a level-up does not need.
IDLE_LOOP_TOML = TEST_TOML.replace("[taskmaster]\nenabled = false", """[taskmaster]
enabled = true
poll_seconds = 0.5
""").replace("save_steps = 10", "save_steps = 40") + """
[curriculum]
queue_low = 1

[curriculum.skills.bin]
priority = 1

[curriculum.skills.sy]
enabled = false
priority = 1

[watch]
enabled = false

[taskmaster.tasks.process_eval_queue]
parameters = { eval_size = 20 }
""" + "".join(f"\n[taskmaster.tasks.{t}]\nenabled = false\n" for t in (
    "sparring_bin", "sparring_sy", "sparring_bin_large", "targeted_sparring", "health_check",
    "validate_queue", "checkpoint_cleanup", "vault_scan", "model_warmup", "lineage_report"))


@pytest.mark.slow
@pytest.mark.timeout(2400)  # minutes of training and evals on a shared 2-core machine
def test_the_idle_loop_levels_up_with_every_eval_answered_on_the_eval_node(
        realm_home, ray_cluster, procs, tmp_path):
    """`realm play --headless` with cluster mode on: the daemon trains on this machine
    (the head, the trainer role), the Task Master generates quests and sends every eval
    to the eval node, until a skill levels up; each eval recorded once, none answered
    here."""
    realm_home.config_file.write_text(IDLE_LOOP_TOML + cluster_toml(ray_cluster, tmp_path / "node-cache"))
    play = procs.start("play", [sys.executable, "-m", "realm_kernel.cli", "play", "--headless"],
                       child_env(realm_home.home))
    realm = Realm(realm_home.home, writer="test")
    up = wait_for(lambda: realm.ledger.query(
        "SELECT data FROM events WHERE kind = 'skill_level_up'"), 2100, "a skill level-up")
    procs.stop(play, signal.SIGINT, 120)  # Ctrl-C: the loop stops, the ledger holds still
    assert json.loads(up[0]["data"])["skill"] == "bin"
    assert realm.skills.state("bin")["level"] >= 2
    done = [json.loads(r["data"]) for r in realm.ledger.query(
        "SELECT data FROM events WHERE kind = 'eval_done'")]
    assert len(done) >= 3  # a level-up takes three evals at >= 80%
    assert {(d["host"] != "local", d["node_id"]) for d in done} == {
        (True, ray_cluster.eval_node.node_id)}, done
    twice = realm.ledger.query("SELECT checkpoint, count(*) AS n FROM evals GROUP BY 1 HAVING n > 1")
    assert twice == [] and realm.ledger.scalar("SELECT count(*) FROM evals") == len(done)
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'cluster_fallback'") == 0


@pytest.mark.slow
def test_an_eval_node_killed_mid_eval_its_eval_completes_elsewhere_once(cluster_realm, ray_cluster):
    realm = cluster_realm
    ck = make_checkpoint(realm, 30)
    doomed = ray_cluster.eval_node
    done: list = []
    worker = threading.Thread(target=lambda: done.append(realm.checkpoints.evaluate_pending(
        size=EVAL_SIZE)), daemon=True)
    worker.start()

    def running_on_doomed() -> bool:
        node = next(n for n in realm.tasks.cluster()["nodes"] if n["node_id"] == doomed.node_id)
        return any(t["checkpoint"] == ck.name for t in node["running"])

    wait_for(running_on_doomed, 300, "the eval running on the eval node")
    ray_cluster.eval_node = ray_cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1",
                                                 resources={"realm_inference": 1})
    ray_cluster.remove_node(doomed, allow_graceful=False)  # SIGKILL: raylet and workers
    worker.join(600)
    assert done, "the eval never finished"
    [result] = done[0]
    assert result["status"] == "done", result
    assert result["node_id"] == ray_cluster.eval_node.node_id != doomed.node_id
    assert evals_of(realm, ck.name) == 1
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'cluster_fallback'") == 0


@pytest.mark.slow
def test_with_every_eval_node_gone_this_machine_evaluates(cluster_realm, ray_cluster):
    realm = cluster_realm
    ray_cluster.remove_node(ray_cluster.eval_node, allow_graceful=False)
    wait_for(lambda: not realm.tasks.cluster()["placeable"], 120, "the eval node to be gone")
    ck = make_checkpoint(realm, 40)
    [result] = realm.checkpoints.evaluate_pending(size=EVAL_SIZE)
    assert result["status"] == "done" and result["host"] == "local", result
    assert evals_of(realm, ck.name) == 1
    fallback = realm.ledger.query("SELECT message FROM events WHERE kind = 'cluster_fallback'")
    assert len(fallback) == 1 and ck.name in fallback[0]["message"]
    # A quest's rows too: made here, with the event, and published once.
    made = realm.skills.curriculum_quest(seed=5)
    assert made["host"] == "local" and made["node_id"] is None
    assert (realm.paths.inbox / made["quest"]).is_file()
    fallback = realm.ledger.query("SELECT message FROM events WHERE kind = 'cluster_fallback' "
                                  "ORDER BY ts")
    assert len(fallback) == 2 and made["quest"] in fallback[1]["message"]
