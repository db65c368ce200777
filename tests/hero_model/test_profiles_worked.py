"""Hero profiles (hero_model/profiles.py) in the detail a user reads: which measured peak
calibrates a fit and by how much, what each explicit training setting changes in the fit
(max_length, liger, dtype, gradient checkpointing), the CPU fallback's sources and note,
a planned card's size, a hub id's own config.json, and `realm hero profile`'s text word for
word. Planned cards only: no test needs a GPU or downloads anything."""

from __future__ import annotations

import json

import pytest

from realm_kernel.hero_model import profiles
from realm_kernel.hero_model.vram import GIB, QWEN3_ARCHITECTURES, fit
from realm_kernel.store import batch_fit
from realm_kernel.store.config import HeroConfig, RealmConfig, load_config
from realm_kernel.store.paths import RealmPaths

from .test_hub import lay_out_cache, offline_cache  # noqa: F401 (a fixture)

QWEN = QWEN3_ARCHITECTURES["qwen3-0.6b"]
PLANNED = "a planned card (hero.vram_gb)"


def peak(**kw) -> dict:
    return {"card": "RTX 4090", "max_length": 2048, "card_gib": 23.99, "estimate": 10e9,
            "max_memory_allocated": 11e9, "max_memory_reserved": 12e9,
            "measured": "2026-12-01T10:00:00", **kw}


def test_calibration_takes_the_newest_usable_peak_on_this_card_and_length():
    newest = peak(max_memory_reserved=13e9, measured="2026-12-02T10:00:00")
    peaks = [peak(), newest,
             peak(max_length=1024, measured="2026-12-03T00:00:00"),        # another length
             peak(card="A100", measured="2026-12-04T00:00:00"),             # another card
             peak(estimate=0, measured="2026-12-05T00:00:00"),              # no estimate
             peak(estimate="n/a", measured="2026-12-05T00:00:00"),
             peak(max_memory_reserved=None, max_memory_allocated=None, measured="2026-12-06")]
    assert profiles.calibration(peaks, "RTX 4090", 23.99, False, 2048) == {**newest, "scale": 1.3}
    assert profiles.calibration(peaks, "RTX 4090", 23.99, False, 4096) is None
    assert profiles.calibration([], "RTX 4090", 23.99, False, 2048) is None


def test_calibration_prefers_reserved_and_rounds_the_scale():
    assert profiles.calibration([peak(max_memory_reserved=12.34567e9)], "RTX 4090", 24, False,
                                2048)["scale"] == 1.2346
    # Without a reserved figure, the allocated one.
    only_allocated = peak(max_memory_reserved=None, max_memory_allocated=11.5e9)
    assert profiles.calibration([only_allocated], "RTX 4090", 24, False, 2048)["scale"] == 1.15


def test_a_planned_card_matches_peaks_by_size_within_five_percent():
    near, far = peak(card="L4", card_gib=23.0), peak(card="A10", card_gib=25.5, measured="2026-12-09")
    assert profiles.calibration([near, far], "anything", 24, True, 2048)["card"] == "L4"
    assert profiles.calibration([far], "anything", 24, True, 2048) is None
    assert profiles.calibration([peak(card_gib=None)], "RTX 4090", 24, True, 2048) is None


def test_resolution_text_and_dict_word_for_word():
    res = profiles.Resolution(
        profile="qwen3-0.6b", chosen_by="realm.toml", device="cuda: RTX 4090, 24.0 GiB",
        values={"training.batch_size": 2, "training.dtype": "bfloat16"},
        sources={"training.batch_size": "profile qwen3-0.6b: fit", "training.dtype": "realm.toml"},
        notes=["mind the gap"], card_gib=24.0, fit="batch 2 x accumulation 8",
        measured=[{"card": "RTX 4090", "micro_batch": 1, "gradient_accumulation_steps": 16,
                   "gradient_checkpointing": True, "measured": "2026-12-01T10:00:00"},
                  {"card": "L4", "micro_batch": 2, "gradient_accumulation_steps": 8,
                   "measured": "2026-12-02T10:00:00"}])
    assert res.text() == "\n".join([
        "Hero profile: qwen3-0.6b (chosen by realm.toml) on cuda: RTX 4090, 24.0 GiB",
        "Fit: batch 2 x accumulation 8",
        '  training.batch_size  2                  profile qwen3-0.6b: fit',
        '  training.dtype       "bfloat16"         realm.toml',
        "Measured on RTX 4090: micro-batch 1 x accumulation 16 with gradient checkpointing fits "
        "(out-of-memory back-off, 2026-12-01T10:00:00); battles there start at it",
        "Measured on L4: micro-batch 2 x accumulation 8 fits (out-of-memory back-off, "
        "2026-12-02T10:00:00); battles there start at it",
        "Note: mind the gap"])
    assert res.as_dict() == {
        "profile": "qwen3-0.6b", "chosen_by": "realm.toml", "device": "cuda: RTX 4090, 24.0 GiB",
        "card_gib": 24.0, "fit": "batch 2 x accumulation 8", "notes": ["mind the gap"],
        "measured": res.measured, "calibration": None,
        "values": {"training.batch_size": {"value": 2, "source": "profile qwen3-0.6b: fit"},
                   "training.dtype": {"value": "bfloat16", "source": "realm.toml"}}}
    empty = profiles.Resolution(profile="dio-mini", chosen_by="", device="cpu")
    assert empty.text() == "Hero profile: dio-mini (chosen by ) on cpu"


def test_resolve_without_anything_explicit_asks_for_the_profiles_base_model(tmp_path):
    asked = []
    cfg = RealmConfig(hero=HeroConfig(profile="qwen3-0.6b", vram_gb=24))
    res = profiles.resolve(cfg, {}, tmp_path, lambda model: asked.append(model) or [])
    assert asked == ["Qwen/Qwen3-0.6B"] and res.chosen_by == ""
    assert res.text().startswith("Hero profile: qwen3-0.6b (chosen by ) on cuda: ")
    dio = profiles.resolve(RealmConfig(), {}, tmp_path)
    assert (dio.profile, dio.chosen_by, dio.device) == ("dio-mini", "default", "any (not sized to a card)")


def write_toml(home, text: str) -> RealmPaths:
    home.mkdir(parents=True, exist_ok=True)
    (home / "realm.toml").write_text(text)
    return RealmPaths.at(home)


def qwen_fit(card_gib: float, **kw):
    return fit(QWEN, card_bytes=card_gib * GIB, effective_batch=16, max_length=2048,
               **{"dtype": "bfloat16", **kw})


def test_a_small_card_halves_max_length_to_512_unless_it_is_set(tmp_path):
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 8\n')
    cfg = load_config(tmp_path, environ={})
    t = cfg.training
    assert (t.max_length, t.gradient_checkpointing, t.batch_size) == (512, True, 1)
    assert "max_length 512" in cfg.resolved_profile.fit
    # A max_length the user set is kept: the fit sizes the rest around it.
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 8\n[training]\nmax_length = 1024\n')
    cfg = load_config(tmp_path, environ={})
    res = cfg.resolved_profile
    assert cfg.training.max_length == 1024 and "max_length 1024" in res.fit
    assert res.sources["training.max_length"] == "realm.toml (profile qwen3-0.6b would give 1024)"
    assert any(n.startswith("qwen3-0.6b does not fit this card even at batch 1 with gradient "
                            "checkpointing and max_length 1024") for n in res.notes), res.notes


@pytest.mark.parametrize("setting, fit_kw, batch, checkpointing", [
    ('liger = "on"', {"liger": True}, 4, False),
    ('dtype = "float32"', {"dtype": "float32"}, 1, False),
    ("gradient_checkpointing = true", {"checkpointing": True}, 4, True),
])
def test_explicit_training_settings_size_the_fit(tmp_path, setting, fit_kw, batch, checkpointing):
    write_toml(tmp_path, f'[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 24\n[training]\n{setting}\n')
    t = load_config(tmp_path, environ={}).training
    assert (t.batch_size, t.gradient_accumulation_steps, t.gradient_checkpointing) == \
        (batch, 16 // batch, checkpointing)
    f = qwen_fit(24, **fit_kw)
    assert (f.batch_size, f.gradient_checkpointing) == (batch, checkpointing)
    assert (qwen_fit(24).batch_size, qwen_fit(24).gradient_checkpointing) == (2, False)  # unset: batch 2


def test_cpu_fallback_names_its_source_for_each_value_it_sets(tmp_path, monkeypatch):
    monkeypatch.setattr(profiles, "detect_card", lambda: None)
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\n')
    res = load_config(tmp_path, environ={}).resolved_profile
    for key in ("training.dtype", "training.batch_size", "training.gradient_accumulation_steps"):
        assert res.sources[key] == "profile qwen3-0.6b: CPU fallback (no CUDA device)", key
    assert res.notes == [
        "no CUDA device: qwen3-0.6b trains on the CPU in float32 (its matmuls in bf16 where the CPU "
        "has native bf16) at batch 1 x 16 accumulation; it works, slowly (seconds to minutes a "
        "step). On a GPU machine the batch is sized to the card; [hero] vram_gb plans for a card "
        "of that size"]


def test_a_planned_cards_size_is_kept_to_two_decimals(tmp_path):
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 23.456\n')
    res = load_config(tmp_path, environ={}).resolved_profile
    assert res.card_gib == 23.46 and res.device == f"cuda: {PLANNED}, 23.5 GiB"
    assert res.sources["training.batch_size"].endswith(f" ({PLANNED}, 23.5 GiB)")


def test_a_measured_peak_calibrates_the_fit_and_says_so(tmp_path):
    paths = write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 24\n')
    assert load_config(tmp_path, environ={}).training.batch_size == 2
    # A battle on a 23.99 GiB card measured twice the estimate (reserved): batch 1 fits.
    batch_fit.record_peak(paths, batch_fit.fit_key("RTX 4090", "Qwen/Qwen3-0.6B", 2048), card_gib=23.99,
                          estimate=8e9, max_memory_reserved=16e9, max_memory_allocated=15e9)
    cfg = load_config(tmp_path, environ={})
    res = cfg.resolved_profile
    assert res.calibration["scale"] == 2.0 and res.calibration["card"] == "RTX 4090"
    assert cfg.training.batch_size == qwen_fit(24, scale=2.0).batch_size == 1
    when = res.calibration["measured"]
    said = (f"; estimates x2, the peak a battle measured on RTX 4090 ({when}) over the "
            "calculator's figure")
    assert res.fit.endswith(said)
    assert res.sources["training.batch_size"].endswith(f" ({PLANNED}, 24.0 GiB{said})")
    # Measured at another max_length: not this fit's calibration.
    write_toml(tmp_path, '[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 24\n[training]\nmax_length = 1024\n')
    assert load_config(tmp_path, environ={}).resolved_profile.calibration is None


def test_a_cached_hub_ids_own_config_sizes_the_fit(offline_cache, tmp_path):  # noqa: F811
    model = tmp_path / "big"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({**QWEN3_ARCHITECTURES["qwen3-4b"], "model_type": "qwen3"}))
    snap = lay_out_cache(offline_cache, model, "realm-test/big")
    home = tmp_path / "realm"
    write_toml(home, '[hero]\nprofile = "qwen3-0.6b"\nbase_model = "realm-test/big"\nvram_gb = 24\n')
    res = load_config(home, environ={}).resolved_profile
    assert res.fit.endswith(f"(sized from {snap}/config.json)")
    assert any("does not fit this card" in n for n in res.notes), res.notes
