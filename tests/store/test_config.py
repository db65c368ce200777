import pytest

from realm_kernel.store.config import ConfigError, load_config


def test_defaults_without_a_file(tmp_path):
    cfg = load_config(tmp_path, environ={})
    assert cfg.hero.name == "DIO" and cfg.training.batch_size >= 1


def test_bad_value_names_file_and_key(tmp_path):
    (tmp_path / "realm.toml").write_text("[training]\nbatch_size = 0\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path, environ={})
    assert "realm.toml" in str(e.value) and "training.batch_size" in str(e.value)
    assert "(got 0)" in str(e.value)  # the value it was given


def test_unknown_key_is_rejected(tmp_path):
    (tmp_path / "realm.toml").write_text("[training]\nlearning_rat = 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat"):
        load_config(tmp_path, environ={})


def test_broken_toml(tmp_path):
    (tmp_path / "realm.toml").write_text("[training\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path, environ={})


def test_env_override(tmp_path):
    cfg = load_config(tmp_path, environ={"REALM_TRAINING__MAX_STEPS": "7"})
    assert cfg.training.max_steps == 7


def test_base_model_path(tmp_path):
    from realm_kernel.store.paths import RealmPaths
    paths = RealmPaths.at(tmp_path)
    assert load_config(tmp_path, environ={}).base_model_path(paths) == paths.dio_mini
    (tmp_path / "realm.toml").write_text('[hero]\nbase_model = "/models/Qwen3-0.6B"\n')
    assert str(load_config(tmp_path, environ={}).base_model_path(paths)) == "/models/Qwen3-0.6B"


def test_the_old_validation_level_key_still_reads_as_validation_depth(tmp_path):
    """[quests] validation_level was renamed validation_depth ("level" is the hero's and the
    skills'): older realm.toml files keep working, and the new name wins where both are set."""
    (tmp_path / "realm.toml").write_text('[quests]\nvalidation_level = "deep"\n')
    assert load_config(tmp_path, environ={}).quests.validation_depth == "deep"
    (tmp_path / "realm.toml").write_text('[quests]\nvalidation_level = "deep"\nvalidation_depth = "quick"\n')
    assert load_config(tmp_path, environ={}).quests.validation_depth == "quick"
    cfg = load_config(tmp_path, environ={"REALM_QUESTS__VALIDATION_LEVEL": "standard"})
    assert cfg.quests.validation_depth == "quick"
