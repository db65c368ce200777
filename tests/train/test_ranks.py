"""DIO on several processes for real: dio-mini trained by 2 gloo ranks under `accelerate
launch` (the daemon's path, services/battle_group.py) against 1 process, on this CPU."""

import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from realm_kernel.services.battle_group import fight_in_ranks
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import SIDECAR
from realm_kernel.store.process import pid_alive
from realm_kernel.store.status import TRAINING, read_status
from realm_kernel.train import TrainerEngine
from realm_kernel.train.mixed import mixed_examples
from realm_kernel.train.ranks import agree, barrier, local_nproc, per_rank
from tests.helpers import TEST_TOML, stop_at, wait_for
from tests.train.test_engine_features import job_for, losses

CUDA = torch.cuda.is_available()
# float32 on a CPU: the ranks' all-reduce sums gradients in another order than one
# process does, so equal means equal to a few float32 roundings, not bit for bit.
LOSS_TOL = 2e-2 if CUDA else 1e-4
# Tiny on purpose (2 shared cores): 4 steps, no held-out pass, float32. batch_size 6 packs
# these quests into 4 rows a step (measured), so each of 2 ranks takes exactly 2.
SETTINGS = dict(max_steps=4, save_steps=2, eval_fraction=0.0, batch_size=6, dtype="float32")


def no_abort() -> bool:
    return False


def ranked(paths, job, nproc=2, should_abort=no_abort):
    result = fight_in_ranks(paths, job, nproc, "ddp", should_abort)
    assert result.success, result.error_message
    assert result.world_size == nproc
    return result


def checkpoint(led, run_id, step):
    [row] = led.query("SELECT path FROM checkpoints WHERE run_id = ? AND step = ?", [run_id, step])
    return Path(row["path"])


def test_the_step_batch_is_split_across_ranks_and_nproc_defaults_to_the_gpus():
    from realm_kernel.store.config import TrainingConfig
    assert [per_rank(8, w) for w in (1, 2, 3, 8, 16)] == [8, 4, 3, 1, 1]
    assert local_nproc(TrainingConfig(nproc=3)) == 3
    assert local_nproc(TrainingConfig()) == (torch.cuda.device_count() or 1)
    assert agree([True, False], 1) == [True, False]  # one process: its own reading


def _agree_rank(r: int, port: int, out: str) -> None:
    """One of two real gloo processes: each reads different flags; both must act on rank
    0's, and only after both got there (the barrier)."""
    import os

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=r, world_size=2)
    try:
        got = agree([r == 0, r == 1], 2)
        barrier(2)
        Path(out, f"{r}.json").write_text(json.dumps(got))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_takes_rank_0s_reading_of_the_controls(tmp_path):
    import torch.multiprocessing as mp

    from realm_kernel.train.ranks import free_port
    mp.spawn(_agree_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    for r in (0, 1):
        assert json.loads((tmp_path / f"{r}.json").read_text()) == [True, False], f"rank {r}"


@pytest.mark.skipif(CUDA, reason="FSDP is refused only where there is no CUDA")
def test_fsdp_on_a_cpu_is_a_setup_fault_not_a_silent_ddp(realm_home):
    """accelerate would run "fsdp" ranks on a CPU as plain DDP: the battle is refused
    before any rank starts, as the setup's fault (the quest waits, it is not failed)."""
    job = job_for(realm_home, "fsdp", mixed_examples(8, seed=1), **SETTINGS)
    result = fight_in_ranks(realm_home, job, 2, "fsdp", no_abort)
    assert not result.success and result.setup_fault
    assert "parallel = 'fsdp' needs CUDA" in result.error_message
    assert not (realm_home.logs / "ranks-fsdp").exists(), "no rank was started"


@pytest.mark.slow
def test_two_ranks_train_as_one_process_does_and_write_the_realm_once(realm_home):
    """The same quest and settings, 1 process vs 2 gloo ranks: the same loss at every step
    and the same weights; the ranks' checkpoints are complete (one full state dict) and
    load on the eval path; each metric row and checkpoint row is written once."""
    led = Ledger(realm_home, "test")
    examples = mixed_examples(64, seed=5)
    one = TrainerEngine(realm_home, led).run_job(job_for(realm_home, "one", examples, **SETTINGS))
    assert one.success, one.error_message
    # Read now: the 2-rank run's step 4 may take the same checkpoint name (same minute).
    w1 = load_file(checkpoint(led, "one", 4) / "model.safetensors")
    ranked(realm_home, job_for(realm_home, "two", examples, **SETTINGS))
    a, b = losses(led, "one"), losses(led, "two")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for step in a:
        assert b[step] == pytest.approx(a[step], abs=LOSS_TOL), f"step {step}"
    assert led.scalar("SELECT count(*) FROM metrics WHERE run_id = 'two' AND loss IS NOT NULL") == 4
    assert led.scalar("SELECT count(*) FROM checkpoints WHERE run_id = 'two'") == 2
    # Written by one rank, whole: the weights, config, tokenizer and sidecar.
    final = checkpoint(led, "two", 4)
    for name in ("model.safetensors", "config.json", "tokenizer.json", SIDECAR):
        assert (final / name).exists(), name
    w2 = load_file(final / "model.safetensors")
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-4), k
    # The eval path (answering) loads it as it loads any checkpoint.
    from realm_kernel.oracle.answering import answer, load
    model, tok = load(final)
    [reply] = answer(model, tok, ["1 + 1 ="], max_new_tokens=4).texts
    assert isinstance(reply, str)


@pytest.mark.slow
def test_resume_across_rank_counts_gives_the_same_losses(realm_home):
    """A 2-rank battle stopped at step 1 (pause, then stop: every rank stops at the same
    step, rank 0's reading) resumes in 1 process, and a 1-process battle cut at step 2
    resumes over 2 ranks; both continue with the uninterrupted run's losses."""
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    # 25 packed rows: 4 steps of 4 never reach the epoch's end, where accelerate fills the
    # ranks' last batches with the epoch's first rows (a step one process does not take).
    examples = mixed_examples(128, seed=6)
    straight = engine.run_job(job_for(realm_home, "straight", examples, **SETTINGS))
    assert straight.success, straight.error_message
    ref = losses(led, "straight")

    # 2 ranks -> 1 process. The battle pauses at its first step boundary; the stop then
    # ends it there with a saved checkpoint that carries its resume state.
    pause, stop = (realm_home.control_file(c) for c in ("pause", "stop"))
    pause.parent.mkdir(parents=True, exist_ok=True)
    pause.write_text("test")
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(r=fight_in_ranks(
        realm_home, job_for(realm_home, "cut2", examples, **SETTINGS), 2, "ddp", no_abort)))
    t.start()
    wait_for(lambda: read_status(realm_home, TRAINING).get("state") == "paused", 300,
             "the 2-rank battle to pause")
    stop.write_text("test")
    t.join(300)
    pause.unlink()
    stop.unlink()
    cut = box["r"]
    assert cut.success and cut.stopped and cut.global_step == 1, cut.error_message
    one_ckpt = checkpoint(led, "cut2", 1)
    # Complete: the weights once, and every rank's share of the resume state (its RNG).
    for name in ("optimizer.pt", "model.safetensors", "rng_state_0.pth", "rng_state_1.pth"):
        assert (one_ckpt / name).exists(), name
    job = job_for(realm_home, "cut2", examples, **SETTINGS)
    job.resume_from = one_ckpt
    resumed = engine.run_job(job)
    assert resumed.success and resumed.world_size == 1, resumed.error_message
    got = losses(led, "cut2")
    for step in (2, 3, 4):
        assert got[step] == pytest.approx(ref[step], abs=LOSS_TOL), f"2 -> 1, step {step}"

    # 1 process -> 2 ranks.
    cut1 = job_for(realm_home, "cut1", examples, **SETTINGS)
    cut1.callbacks = [stop_at(2)]
    assert engine.run_job(cut1).success
    job = job_for(realm_home, "cut1", examples, **SETTINGS)
    job.resume_from = checkpoint(led, "cut1", 2)
    ranked(realm_home, job)
    got = losses(led, "cut1")
    for step in (3, 4):
        assert got[step] == pytest.approx(ref[step], abs=LOSS_TOL), f"1 -> 2, step {step}"
    events = [json.loads(e["data"] or "{}") for e in led.query(
        "SELECT data FROM events WHERE kind = 'battle_paused'")]
    assert len(events) == 1, "rank 0 alone records the pause"


# The tests' realm.toml with a [training] of its own: 2 ranks, float32, 40 short steps.
RANKS_TOML = """
[training]
nproc = 2
batch_size = 6
dtype = "float32"
max_steps = 40
save_steps = 10
eval_fraction = 0.0
max_length = 128
threads = 1

""" + TEST_TOML[TEST_TOML.index("[daemon]"):]


@pytest.mark.slow
def test_the_daemon_fights_over_two_ranks_stops_them_and_resumes(tmp_path, dio_mini_dir, procs):
    """`[training] nproc = 2`: the real daemon trains its quest over 2 ranks. Stopped (SIGTERM)
    mid-battle, it stops its ranks at a step with a checkpoint and exits; started again it
    resumes the quest over 2 ranks to the end. The realm is written once per step: the
    hero's XP is the steps trained, one metric row each."""
    import signal

    from realm_kernel.api import Realm
    from realm_kernel.quests.formats import write_quest
    from tests.helpers import make_home, start_daemon

    home = make_home(tmp_path / "realm", dio_mini_dir, RANKS_TOML)
    led = Ledger(home, "test")
    quest = write_quest(home.inbox / "q.jsonl", mixed_examples(64, seed=7))
    daemon = start_daemon(procs, home)
    # A paused daemon starts no battle: the pause comes once rank 0 says it trains.
    wait_for(lambda: read_status(home, TRAINING).get("quest") == quest.name, 300,
             "rank 0 to start the battle")
    home.control_file("pause").write_text("test")
    wait_for(lambda: read_status(home, TRAINING).get("state") == "paused", 300,
             "the 2-rank battle to pause at a step")
    status = read_status(home, TRAINING)
    rank0, stopped_at = status["pid"], status["step"]
    assert rank0 != daemon.pid, "the battle runs in the ranks, not in the daemon"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(300) == 0
    assert not pid_alive(rank0), "the ranks end with the daemon"
    started = json.loads(led.query("SELECT data FROM events WHERE kind = 'battle_started'")[0]["data"])
    assert started["ranks"] == 2
    assert (home.queue("normal") / quest.name).exists(), "the stopped quest is back in its queue"
    last = led.query("SELECT step, path FROM checkpoints ORDER BY step DESC")[0]
    assert last["step"] == stopped_at and (Path(last["path"]) / "optimizer.pt").exists()

    home.control_file("pause").unlink()
    start_daemon(procs, home, name="daemon2")
    done = home.queue("recently_completed") / quest.name
    wait_for(done.exists, 600, "the quest to complete over 2 ranks")
    steps = [r["step"] for r in led.query(
        "SELECT step FROM metrics WHERE loss IS NOT NULL ORDER BY step")]
    assert steps == list(range(1, 41)), "one row per step: rank 0 alone writes"
    assert Realm(home.home).hero()["xp"] == 40
    events = [e["kind"] for e in led.query("SELECT kind FROM events WHERE kind LIKE 'battle_%'")]
    assert events.count("battle_started") == 2 and events.count("battle_paused") == 1
