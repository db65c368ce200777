"""The trainer's callback (train/callbacks.RealmCallback) driven step by step, alone, on
a real realm and ledger, as HF's Trainer drives it: the heartbeat's phase at each step's
end, the status file's ETA and the checkpoint it names after a save. The engine runs:
tests/train/test_engine_fast.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from transformers import TrainerControl, TrainerState

from realm_kernel.store.heartbeat import HEARTBEAT
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.status import TRAINING, read_status
from realm_kernel.train import Job
from realm_kernel.train.callbacks import RealmCallback


def test_beats_name_the_phase_and_the_status_names_the_published_checkpoint(realm_home, tmp_path):
    led = Ledger(realm_home, "test")
    job = Job(quest_id="q.jsonl", examples=[], model_path=realm_home.dio_mini, run_id="run-c",
              step_offset=10, skill="bin", skill_level=1)
    cb = RealmCallback(paths=realm_home, ledger=led, job=job)
    args = SimpleNamespace(world_size=1, output_dir=str(tmp_path / "out"))
    state, control = TrainerState(max_steps=4), TrainerControl()
    state.is_world_process_zero = True

    def beat() -> dict:
        cb.metrics.flush()
        return json.loads((realm_home.status / HEARTBEAT).read_text())

    try:
        cb.on_train_begin(args, state, control)
        state.global_step = 1
        cb.on_step_end(args, state, control)
        assert (beat()["phase"], beat()["step"]) == ("step", 11)
        state.global_step = 2
        control.should_save = True
        cb.on_step_end(args, state, control)
        assert (beat()["phase"], beat()["step"]) == ("saving", 12), "HF saves after this hook"
        src = Path(args.output_dir) / "checkpoint-2"
        src.mkdir(parents=True)
        (src / "model.safetensors").write_bytes(b"weights")
        cb.on_save(args, state, control)
        cb.metrics.flush()
        dest = cb.last_checkpoint
        assert dest is not None and dest.parent == realm_home.checkpoints and dest.is_dir()
        status = read_status(realm_home, TRAINING)
        assert status["last_checkpoint"] == dest.name and status["step"] == 12
        assert status["local_step"] == 2 and status["total_steps"] == 4
        assert status["eta_seconds"] is not None and status["eta_seconds"] > 0, "half done: time left"
        assert beat()["phase"] == "step", "the save is written"
        state.global_step = 4
        cb.on_train_end(args, state, control)
        cb.metrics.flush()
        assert read_status(realm_home, TRAINING)["eta_seconds"] == 0
    finally:
        cb.close()
