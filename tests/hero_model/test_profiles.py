"""Hero profiles (hero_model/profiles.py): dio-mini stays the CPU default; qwen3-0.6b is picked
by realm.toml, the environment, `realm play --hero` or its Hub id; its batch and accumulation
are sized by the VRAM calculator to the card (a planned one here: no test needs a GPU or
downloads anything); explicit values always win; every value says where it came from."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from realm_kernel.hero_model import profiles
from realm_kernel.hero_model.vram import GIB, QWEN3_ARCHITECTURES, estimate, fit
from realm_kernel.store.config import ConfigError, TrainingConfig, load_config
from realm_kernel.store.paths import RealmPaths

QWEN = QWEN3_ARCHITECTURES["qwen3-0.6b"]


def write_toml(home, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "realm.toml").write_text(text)


def test_dio_mini_stays_the_cpu_default_and_matches_the_field_defaults(tmp_path):
    cfg = load_config(tmp_path, environ={})
    res = cfg.resolved_profile
    assert (res.profile, res.chosen_by) == ("dio-mini", "default")
    t = cfg.training
    assert (t.learning_rate, t.max_length, t.max_eval_examples) == (1e-3, 256, 16)
    assert cfg.base_model_path(RealmPaths.at(tmp_path)) == RealmPaths.at(tmp_path).dio_mini
    # The profile's values are the fields' own defaults: a realm without a profile is unchanged.
    defaults = TrainingConfig()
    for key, d in profiles.PROFILES["dio-mini"].defaults.items():
        assert getattr(defaults, key.partition(".")[2]) == d.value == res.values[key], key
    assert "bench/RESULTS.md" in res.sources["training.learning_rate"]


@pytest.mark.parametrize("card_gib, batch, accum, checkpointing, length", [
    (8, 1, 16, True, 512),      # an 8 GB card: checkpointing on and a shorter sequence
    (24, 2, 8, False, 2048),    # a 4090
    (80, 8, 2, False, 2048),    # an A100/H100 80 GB
])
def test_fit_sizes_batch_and_accumulation_to_the_card(card_gib, batch, accum, checkpointing, length):
    f = fit(QWEN, card_bytes=card_gib * GIB, effective_batch=16, max_length=2048, dtype="bfloat16")
    assert (f.batch_size, f.gradient_accumulation_steps, f.gradient_checkpointing, f.max_length) == \
        (batch, accum, checkpointing, length)
    assert f.fits and f.estimate.total <= f.budget == card_gib * GIB * 0.85
    assert f.batch_size * f.gradient_accumulation_steps == 16
    # The largest that fits: twice the batch would not.
    bigger = estimate(QWEN, seq_len=length, batch_size=2 * batch, gradient_checkpointing=checkpointing,
                      dtype="bfloat16")
    assert bigger.total > f.budget


def test_fit_says_when_nothing_fits():
    f = fit(QWEN, card_bytes=4 * GIB, effective_batch=16, max_length=2048, dtype="bfloat16")
    assert not f.fits and (f.batch_size, f.gradient_checkpointing, f.max_length) == (1, True, 512)
    assert "does NOT fit" in f.describe()


@pytest.mark.parametrize("card_gib, batch, accum", [(24, 2, 8), (80, 8, 2)])
def test_qwen_profile_from_realm_toml_on_a_planned_card(tmp_path, card_gib, batch, accum):
    write_toml(tmp_path, f'[hero]\nprofile = "qwen3-0.6b"\nvram_gb = {card_gib}\n')
    cfg = load_config(tmp_path, environ={})
    t, res = cfg.training, cfg.resolved_profile
    assert (res.profile, res.chosen_by, res.card_gib) == ("qwen3-0.6b", "realm.toml", card_gib)
    assert cfg.hero.base_model == "Qwen/Qwen3-0.6B"
    assert (t.dtype, t.learning_rate, t.max_length, t.batch_size, t.gradient_accumulation_steps) == \
        ("bfloat16", 1e-5, 2048, batch, accum)
    assert (t.save_steps, t.max_eval_examples, t.gradient_checkpointing) == (200, 64, False)
    assert "LLaMA-Factory" in res.sources["training.learning_rate"]
    assert "VRAM calculator" in res.sources["training.batch_size"]
    assert f"{card_gib:.1f} GiB" in res.sources["training.batch_size"]
    assert "the published qwen3-0.6b config" in res.fit  # nothing on disk: the known architecture


def test_explicit_values_override_the_profile(tmp_path):
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 24\n'
                         '[training]\nlearning_rate = 3e-5\nbatch_size = 4\n')
    cfg = load_config(tmp_path, environ={"REALM_TRAINING__SAVE_STEPS": "40"})
    t, res = cfg.training, cfg.resolved_profile
    assert (t.learning_rate, t.batch_size, t.save_steps) == (3e-5, 4, 40)
    assert t.gradient_accumulation_steps == 4  # the profile's 16 examples a step, around the given batch
    assert t.max_length == 2048 and t.dtype == "bfloat16"  # what was not set still comes from the profile
    assert res.sources["training.learning_rate"].startswith("realm.toml (profile qwen3-0.6b would give 1e-05")
    assert res.sources["training.save_steps"].startswith("environment (REALM_TRAINING__SAVE_STEPS)")
    assert "applied" not in res.as_dict() and res.as_dict()["values"]["training.batch_size"]["value"] == 4


def test_profile_from_the_environment_and_auto_from_the_hub_id(tmp_path):
    cfg = load_config(tmp_path, environ={"REALM_HERO__PROFILE": "qwen3-0.6b", "REALM_HERO__VRAM_GB": "80"})
    assert cfg.resolved_profile.chosen_by == "environment (REALM_HERO__PROFILE)"
    assert cfg.training.batch_size == 8
    write_toml(tmp_path, '[hero]\nbase_model = "Qwen/Qwen3-0.6B"\nvram_gb = 24\n')
    cfg = load_config(tmp_path, environ={})
    assert (cfg.resolved_profile.profile, cfg.training.learning_rate) == ("qwen3-0.6b", 1e-5)
    assert cfg.resolved_profile.chosen_by == "base_model 'Qwen/Qwen3-0.6B'"
    # Another model keeps the dio-mini defaults unless a profile is named.
    write_toml(tmp_path, '[hero]\nbase_model = "/models/other"\n')
    assert load_config(tmp_path, environ={}).resolved_profile.profile == "dio-mini"


def test_the_base_models_own_config_sizes_the_fit(tmp_path):
    big = tmp_path / "models" / "big"
    big.mkdir(parents=True)
    (big / "config.json").write_text(json.dumps({**QWEN3_ARCHITECTURES["qwen3-4b"], "model_type": "qwen3"}))
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nbase_model = "models/big"\nvram_gb = 24\n')
    res = load_config(tmp_path, environ={}).resolved_profile
    assert str(big / "config.json") in res.fit
    assert res.sources["hero.base_model"].startswith("realm.toml")
    assert any("does not fit this card" in n and "lora" in n for n in res.notes), res.notes


def test_without_cuda_the_gpu_profile_falls_back_to_the_cpu_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(profiles, "detect_card", lambda: None)
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\n')
    cfg = load_config(tmp_path, environ={})
    t, res = cfg.training, cfg.resolved_profile
    assert (t.dtype, t.batch_size, t.gradient_accumulation_steps, t.learning_rate) == ("auto", 1, 16, 1e-5)
    assert res.device == "cpu (no CUDA device)" and res.fit is None
    assert any("no CUDA device" in n and "float32" in n for n in res.notes)
    assert "CPU fallback" in res.sources["training.dtype"]


def test_the_card_is_read_through_torch_cuda(tmp_path, monkeypatch):
    import torch

    class Props:
        name, total_memory = "Fake 4090", 24 * GIB
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)
    assert profiles.detect_card.__wrapped__() == ("Fake 4090", 24.0)
    monkeypatch.setattr(profiles, "detect_card", profiles.detect_card.__wrapped__)
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\n')
    res = load_config(tmp_path, environ={}).resolved_profile
    assert res.device == "cuda: Fake 4090, 24.0 GiB" and res.values["training.batch_size"] == 2


@pytest.mark.parametrize("where", ["toml", "env"])
def test_an_unknown_profile_is_refused_by_name(tmp_path, where):
    if where == "toml":
        write_toml(tmp_path, '[hero]\nprofile = "qwen3-7b"\n')
    environ = {"REALM_HERO__PROFILE": "qwen3-7b"} if where == "env" else {}
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path, environ=environ)
    msg = str(e.value)
    assert "hero.profile" in msg and "'qwen3-7b'" in msg and "dio-mini, qwen3-0.6b" in msg


def test_settings_show_each_profile_values_source(tmp_path):
    from realm_kernel.store.settings import describe
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 24\n[training]\nsave_steps = 50\n')
    fields = {f["key"]: f for f in describe(load_config(tmp_path, environ={}))}
    assert fields["training.batch_size"]["value"] == 2
    assert "VRAM calculator" in fields["training.batch_size"]["source"]
    assert fields["training.save_steps"]["source"].startswith("realm.toml")
    assert fields["daemon.poll_seconds"]["source"] is None and fields["hero.profile"]["critical"]


def _cli(home, *args):
    from realm_kernel.cli import app
    return CliRunner().invoke(app, ["--home", str(home), *args], prog_name="realm")


def test_cli_hero_profile_shows_values_and_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(tmp_path))  # restored after: the CLI sets these
    monkeypatch.setenv("REALM_HERO__VRAM_GB", "0")
    res = _cli(tmp_path, "hero", "profile", "qwen3-0.6b", "--vram-gb", "80", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["profile"] == "qwen3-0.6b" and out["values"]["training.batch_size"]["value"] == 8
    assert "LLaMA-Factory" in out["values"]["training.learning_rate"]["source"]
    monkeypatch.setenv("REALM_HERO__VRAM_GB", "0")
    res = _cli(tmp_path, "hero", "profile")
    assert res.exit_code == 0 and "Hero profile: dio-mini (chosen by default)" in res.stdout
    assert "training.learning_rate" in res.stdout and "0.001" in res.stdout
    res = _cli(tmp_path, "hero", "profile", "nope")
    assert res.exit_code == 2 and "unknown hero profile 'nope'" in res.stderr


def test_play_hero_keeps_the_choice_in_realm_toml(tmp_path, monkeypatch):
    from realm_kernel.cli import lifecycle
    monkeypatch.setenv("REALM_HOME", str(tmp_path))
    monkeypatch.setenv("REALM_HERO__VRAM_GB", "0")
    started = []
    monkeypatch.setattr(lifecycle, "_play_detached", lambda *a: started.append(a) or 0)
    res = _cli(tmp_path, "play", "--hero", "nope", "--detach")
    assert res.exit_code == 2 and "--hero: unknown hero profile 'nope'" in res.stderr and not started
    assert not (tmp_path / "realm.toml").exists()
    write_toml(tmp_path, '[training]\nlearning_rate = 2e-5\n')
    res = _cli(tmp_path, "play", "--hero", "qwen3-0.6b", "--vram-gb", "24", "--detach")
    assert res.exit_code == 0, res.output
    assert started and 'profile = "qwen3-0.6b"' in (tmp_path / "realm.toml").read_text()
    cfg = load_config(tmp_path)  # the planned card travels in the environment to what play starts
    assert cfg.resolved_profile.profile == "qwen3-0.6b" and cfg.training.batch_size == 2
    assert cfg.training.learning_rate == 2e-5  # the user's own value stays
