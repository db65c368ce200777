"""Checkpoints that keep pace: only the newest carries resume state, the others are
weights-only and load with plain from_pretrained; retention stays bounded and runs by
itself; the disk budget holds before every save (issue 14, item 3)."""

import json

import pytest
import torch
from transformers import TrainerCallback

import realm_skills as skills
from realm_kernel.store.checkpoints import carries_resume_state, extract_step, resume_files, resume_point
from realm_kernel.store.config import RetentionConfig, load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.vault import VaultKeeper, dir_bytes, every_kth
from realm_kernel.train import Job, TrainerEngine
from tests.helpers import stop_at

pytestmark = pytest.mark.slow


def job(paths, retention: RetentionConfig, count=96, save_steps=3, callbacks=(), run_id="run-1"):
    training = load_config(paths.home).training.model_copy(update={"save_steps": save_steps})
    ex = [p.as_example() for p in skills.generate("bin", 1, count, seed=5)]
    return Job(quest_id="q.jsonl", examples=ex, model_path=paths.dio_mini, run_id=run_id,
               training=training, skill="bin", skill_level=1, retention=retention,
               callbacks=list(callbacks))


def on_disk(paths) -> list:
    return sorted((p for p in paths.checkpoints.glob("checkpoint-*") if p.is_dir()),
                  key=lambda p: extract_step(p.name))


class AnswerEvals(TrainerCallback):
    """Answers each eval request as the Task Master's skip does (the ledger's `eval:<name>`
    key), so retention may delete scored checkpoints; records the folder's size at each
    save, when the new checkpoint is written and the older one still holds its state."""

    def __init__(self, paths, ledger, answer=True):
        self.paths, self.ledger, self.answer, self.sizes = paths, ledger, answer, []

    def on_save(self, args, state, control, **kwargs):
        self.sizes.append(dir_bytes(self.paths.checkpoints))
        if self.answer:
            for row in self.ledger.query("SELECT name FROM checkpoints"):
                self.ledger.event("eval_skipped", "answered by the test",
                                  key=f"eval:{row['name']}")


def test_only_the_newest_checkpoint_carries_resume_state(realm_home):
    from transformers import AutoModelForCausalLM

    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    policy = RetentionConfig(keep_latest=20, keep_best=0, keep_every=0)
    # Interrupted after step 10: the saves at 3, 6, 9; only the newest keeps its state.
    cut = job(realm_home, policy, callbacks=[stop_at(10)])
    result = engine.run_job(cut)
    assert result.success, result.error_message
    ckpts = on_disk(realm_home)
    assert [extract_step(p.name) for p in ckpts] == [3, 6, 9]
    newest, older = ckpts[-1], ckpts[:-1]
    assert carries_resume_state(newest) and (newest / "scheduler.pt").exists()
    for p in older:
        assert not resume_files(p), f"{p.name} keeps {resume_files(p)}"
        assert (p / "model.safetensors").exists() and (p / "tokenizer.json").exists()
        assert (p / ".ledger.json").exists() and (p / "trainer_state.json").exists()
        model = AutoModelForCausalLM.from_pretrained(p)  # plain HF, nothing of ours
        assert next(model.parameters()).dtype == torch.float32  # dio-mini trains in float32
    weights_only, resume = dir_bytes(older[-1]), dir_bytes(newest)
    assert resume > 2 * weights_only  # AdamW's two moments are the bulk of a resume save
    assert resume_point(led, "q.jsonl", "run-1") == (newest, 0)

    # The run resumes there and finishes: its final save is weights-only (nothing resumes
    # into a finished run: the next quest starts a fresh optimizer), and so is every other.
    rest = job(realm_home, policy)
    rest.resume_from = newest
    result = engine.run_job(rest)
    assert result.success, result.error_message
    final = on_disk(realm_home)[-1]
    assert str(final) == result.last_checkpoint_path and extract_step(final.name) > 9
    assert not any(resume_files(p) for p in on_disk(realm_home))
    # A crash before the quest was marked done resumes into the finished run: no step is
    # trained again and no checkpoint is written.
    assert resume_point(led, "q.jsonl", "run-1") == (final, 0)
    again = job(realm_home, policy)
    again.resume_from = final
    saved = led.scalar("SELECT count(*) FROM checkpoints")
    result = engine.run_job(again)
    assert result.success and result.global_step == extract_step(final.name)
    assert led.scalar("SELECT count(*) FROM checkpoints") == saved


def test_retention_runs_after_each_save_and_never_deletes_an_unscored_checkpoint(realm_home):
    led = Ledger(realm_home, "test")
    policy = RetentionConfig(keep_latest=2, keep_best=0, keep_every=0)
    # No eval answered: every checkpoint waits for the Task Master and stays.
    result = TrainerEngine(realm_home, led).run_job(job(realm_home, policy))
    assert result.success, result.error_message
    saved = led.scalar("SELECT count(*) FROM checkpoints")
    assert len(on_disk(realm_home)) == saved >= 4
    assert all(r["reasons"] == ["awaiting its eval"] or "latest" in r["reasons"]
               for r in VaultKeeper(realm_home, led).retention_plan(policy)["keep"])

    # Scored ones go, oldest first, as soon as the next save lands.
    answer = AnswerEvals(realm_home, led)
    result = TrainerEngine(realm_home, led).run_job(
        job(realm_home, policy, callbacks=[answer], run_id="run-2"))
    assert result.success, result.error_message
    kept = on_disk(realm_home)
    assert len(kept) <= 3, [p.name for p in kept]  # the 2 latest (+ the one in use)
    removed = led.query("SELECT count(*) AS n FROM assets WHERE status = 'deleted' AND type = 'checkpoint'")
    assert removed[0]["n"] >= saved
    assert led.scalar("SELECT count(*) FROM events WHERE kind = 'checkpoint_tidy_failed'") == 0


def test_the_disk_budget_holds_before_every_save(realm_home):
    led = Ledger(realm_home, "test")
    # Learn what one resume save weighs, then allow about two and a half of them.
    first = TrainerEngine(realm_home, led).run_job(  # interrupted: its save keeps its state
        job(realm_home, RetentionConfig(), count=40, save_steps=2, run_id="probe",
            callbacks=[stop_at(2)]))
    assert first.success, first.error_message
    one = dir_bytes(on_disk(realm_home)[-1])
    budget = 2.5 * one
    policy = RetentionConfig(keep_latest=1, keep_best=0, keep_every=0, auto=False,
                             max_disk_gb=budget / 1024 ** 3)
    answer = AnswerEvals(realm_home, led)
    result = TrainerEngine(realm_home, led).run_job(
        job(realm_home, policy, save_steps=2, callbacks=[answer], run_id="run-b"))
    assert result.success, result.error_message
    assert len(answer.sizes) >= 4
    assert max(answer.sizes) <= budget, (answer.sizes, budget)
    assert led.scalar("SELECT count(*) FROM events WHERE kind = 'disk_budget'") == 0
    assert led.scalar("SELECT max(step) FROM checkpoints") == result.global_step

    # A budget no checkpoint fits in: saves are skipped, said so, and training still ends.
    tiny = RetentionConfig(keep_latest=1, keep_best=0, keep_every=0, max_disk_gb=one / 2 / 1024 ** 3)
    before = led.scalar("SELECT count(*) FROM checkpoints")
    result = TrainerEngine(realm_home, led).run_job(job(realm_home, tiny, count=40, run_id="run-t"))
    assert result.success, result.error_message
    assert led.scalar("SELECT count(*) FROM checkpoints") == before
    skipped = led.query("SELECT message, data FROM events WHERE kind = 'disk_budget'")
    assert skipped and "max_disk_gb" in skipped[0]["message"]
    assert json.loads(skipped[0]["data"])["fits"] is False


def test_every_kth_doubles_to_stay_bounded():
    assert every_kth(5, 10, 10) == 10
    assert every_kth(100, 10, 10) == 10
    assert every_kth(101, 10, 10) == 20
    assert every_kth(10_000, 10, 10) == 1280
    for saved in range(1, 3000, 37):
        k = every_kth(saved, 10, 10)
        assert -(-saved // k) <= 10 and k % 10 == 0
        # doubling keeps a subset of what the smaller K kept: nothing comes back
        assert all(i % (k // 2) == 0 for i in range(0, saved, k)) or k == 10
