"""LoRA on dio-mini (CPU, real peft): adapter checkpoints naming their base, training on
from an adapter, the Oracle and the one loader using adapter + base, a merged export; the
TensorBoard and MLflow trackers writing real files offline; QLoRA on CUDA only."""

import json

import pytest
import torch

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.hero_model.vram import estimate, lora_params
from realm_kernel.store.config import ConfigError, load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import checkpoint_complete
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.loading import load_model_and_tokenizer
from realm_kernel.train.lora import base_of, check_method
from realm_kernel.train.presets import PRESETS

LORA_TOML = """
[training]
batch_size = 8
save_steps = 5
max_length = 128
threads = 1
max_steps = 10
method = "lora"
lora_rank = 4
lora_alpha = 8
report_to = ["tensorboard", "mlflow"]
"""


def job(paths, model_path, run_id, **kw):
    ex = [p.as_example() for p in skills.generate("bin", 1, 120, seed=3)]
    return Job(quest_id=f"{run_id}.jsonl", examples=ex, model_path=model_path, run_id=run_id,
               training=load_config(paths.home).training, skill="bin", skill_level=1, **kw)


@pytest.mark.slow
def test_lora_adapters_trackers_oracle_and_merged_export(realm_home, tmp_path, monkeypatch):
    realm_home.config_file.write_text(LORA_TOML)
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    first = engine.run_job(job(realm_home, realm_home.dio_mini, "lora-1"))
    assert first.success, first.error_message
    ckpt = realm_home.checkpoints / led.query("SELECT name FROM checkpoints ORDER BY step DESC")[0]["name"]
    assert (ckpt / "adapter_config.json").is_file() and (ckpt / "adapter_model.safetensors").is_file()
    assert not (ckpt / "model.safetensors").exists() and checkpoint_complete(ckpt)
    sidecar = json.loads((ckpt / ".ledger.json").read_text())
    assert sidecar["adapter"] is True and sidecar["base_model"] == str(realm_home.dio_mini)
    assert base_of(ckpt) == realm_home.dio_mini

    # The next quest trains on from the adapter (same rank); its base is still dio-mini.
    second = engine.run_job(job(realm_home, ckpt, "lora-2", step_offset=first.global_step))
    assert second.success, second.error_message
    last = realm_home.checkpoints / led.query("SELECT name FROM checkpoints ORDER BY step DESC")[0]["name"]
    assert json.loads((last / ".ledger.json").read_text())["base_model"] == str(realm_home.dio_mini)
    assert json.loads((last / "adapter_config.json").read_text())["r"] == 4

    # The one loader: adapter + base, merged for inference; the adapter changed the model.
    merged, tok = load_model_and_tokenizer(last, inference=True, device="cpu")
    base, _ = load_model_and_tokenizer(realm_home.dio_mini, inference=True, device="cpu")
    ids = tok("①+⓪=", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(merged(ids).logits, base(ids).logits)

    # The Oracle answers from adapter + base, and a merged export is a full HF model.
    realm = Realm(realm_home.home)
    step = second.global_step
    realm.oracle.load(step)
    reply = realm.oracle.chat(step, "What is ①+①?", sampling={"max_new_tokens": 4})
    assert reply["model"] == last.name
    evaluated = realm.checkpoints.evaluate_pending(max_checkpoints=1, size=5)  # the evals' grading path
    assert evaluated and evaluated[0]["status"] == "done", evaluated
    adapter_copy = realm.checkpoints.export(step, "adapter")
    assert (adapter_copy / "adapter_config.json").is_file() and not (adapter_copy / ".ledger.json").exists()
    full = realm.checkpoints.export(step, "merged", merge=True)
    assert (full / "config.json").is_file() and (full / "model.safetensors").is_file()
    reloaded, _ = load_model_and_tokenizer(full, inference=True, device="cpu")
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, merged(ids).logits, atol=1e-5)

    # Trackers, offline: TensorBoard event files and MLflow's local file store.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = list((realm_home.home / "trackers" / "tensorboard" / "lora-1").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"] and len(acc.Scalars("train/loss")) >= 5
    import mlflow
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient((realm_home.home / "trackers" / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("realm").experiment_id])
    assert {r.info.run_name for r in runs} == {"lora-1", "lora-2"}
    assert all("loss" in r.data.metrics for r in runs)


def test_method_and_tracker_settings_are_checked(tmp_path):
    (tmp_path / "realm.toml").write_text('[training]\nmethod = "dora"\n')
    with pytest.raises(ConfigError, match="training.method"):
        load_config(tmp_path)
    (tmp_path / "realm.toml").write_text('[training]\nreport_to = ["none", "mlflow"]\n')
    with pytest.raises(ConfigError, match="report_to"):
        load_config(tmp_path)
    (tmp_path / "realm.toml").write_text('[training]\nreport_to = "tensorboard"\n')
    assert load_config(tmp_path).training.report_to == ["tensorboard"]
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="qlora.*CUDA"):
            check_method("qlora", cuda=False)


def test_vram_covers_lora_and_qlora():
    cfg = PRESETS["qwen3-4b"]
    kw = dict(seq_len=512, gradient_checkpointing=True)
    full, lora, qlora = (estimate(cfg, method=m, **kw) for m in ("full", "lora", "qlora"))
    # rank 16 on all seven projections of Qwen3-4B: ~33M trainable parameters
    assert 30e6 < lora_params(cfg, 16) < 36e6
    assert lora.gradients == lora_params(cfg, 16) * 2 and lora.optimizer < full.optimizer / 50
    assert qlora.weights < lora.weights / 2 < full.weights
    assert qlora.total < lora.total < full.total / 2
    with pytest.raises(ValueError, match="method"):
        estimate(cfg, method="dora", seq_len=8)


@pytest.mark.gpu
@pytest.mark.slow
def test_qlora_trains_a_4bit_base(realm_home):
    if not torch.cuda.is_available():
        pytest.skip("QLoRA needs CUDA")
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")
    realm_home.config_file.write_text(LORA_TOML.replace('"lora"', '"qlora"').replace(
        'report_to = ["tensorboard", "mlflow"]', ""))
    result = TrainerEngine(realm_home, Ledger(realm_home, "test")).run_job(
        job(realm_home, realm_home.dio_mini, "qlora-1"))
    assert result.success, result.error_message
    ckpt = realm_home.checkpoints / Ledger(realm_home, "test").query(
        "SELECT name FROM checkpoints ORDER BY step DESC")[0]["name"]
    assert (ckpt / "adapter_config.json").is_file() and not (ckpt / "model.safetensors").exists()
    model, _ = load_model_and_tokenizer(ckpt, inference=True)
    assert model is not None
