"""Rules of the store that a person meets as an answer or an error: the Settings page's
save (what needs confirming, what a bad value says), a checkpoint that is not whole, a
path that would leave a zone, a step saved twice while in use, and the file
fingerprints a copy is compared by (store/settings.py, checkpoints.py, vault.py)."""

from __future__ import annotations

import pytest

from realm_kernel.api import Realm
from realm_kernel.store import settings
from realm_kernel.store.checkpoints import checkpoint_row, locate_checkpoint
from realm_kernel.store.config import RetentionConfig
from realm_kernel.store.confine import PathRefused
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.vault import fingerprint, local_fs, safe_relpath

from .test_vault import fake_checkpoint


@pytest.fixture
def paths(tmp_path):
    return RealmPaths.at(tmp_path / "home").ensure()


def test_saving_a_critical_setting_unchanged_needs_no_confirmation(paths):
    paths.config_file.write_text("[training]\nmax_length = 256\n")
    assert settings.save(paths, {"training.max_length": 256}) == {
        "ok": True, "changed": ["training.max_length"], "path": str(paths.config_file)}
    assert settings.save(paths, {"training.max_length": 512}) == {
        "ok": False, "needs_confirmation": ["training.max_length"]}
    assert "max_length = 256" in paths.config_file.read_text()


def test_a_bad_setting_says_what_it_got(paths):
    got = settings.save(paths, {"training.max_length": "long", "nope.x": 1})
    assert got["ok"] is False and got["errors"]["nope.x"] == "unknown setting"
    assert got["errors"]["training.max_length"].endswith("(got 'long')")


def test_a_checkpoint_that_is_not_whole_says_why(tmp_path):
    r = Realm(tmp_path / "home")
    row = fake_checkpoint(r.paths, 5, 1.0)
    (r.paths.checkpoints / row["name"] / ".ledger.json").unlink()
    r.ledger.append("checkpoints", [row])
    with pytest.raises(LookupError, match=r"\(step 5\) at .* is incomplete \(no sidecar or no weights\): "
                                          r"it is never loaded$"):
        locate_checkpoint(r.ledger, tmp_path / "base", 5)
    assert checkpoint_row(r.ledger, tmp_path / "base", 0) == {
        "step": 0, "name": "base", "path": str(tmp_path / "base")}


def test_a_path_that_leaves_its_zone_is_refused_naming_the_zone():
    with pytest.raises(PathRefused, match=r"^asset path '\.\./x' refused: .*it must stay inside its zone"):
        safe_relpath("../x")


def test_registering_outside_the_home_names_what_was_refused(tmp_path):
    r = Realm(tmp_path / "home")
    with pytest.raises(PathRefused, match="^registered path "):
        r.vault.register(str(tmp_path / "elsewhere"))


def test_an_older_save_of_the_step_in_use_is_tidied(tmp_path):
    """Step 70 saved twice: the newer folder is the hero's weights (protected); the older
    one is a spare copy retention and the disk budget remove all the same."""
    r = Realm(tmp_path / "home")
    r.ledger.append("checkpoints", [fake_checkpoint(r.paths, s, 1.0) for s in (60, 70)])
    r.ledger.append("checkpoints", [fake_checkpoint(r.paths, 70, 1.0, stamp="20260102-0900")])
    policy = RetentionConfig(keep_best=0, keep_latest=1, keep_every=0)
    plan = r.vault.retention(dry_run=False, policy=policy)
    assert [(d["step"], d["name"]) for d in plan["delete"]] == [
        (60, "checkpoint-60-20260101-1200"), (70, "checkpoint-70-20260101-1200")]
    assert sorted(p.name for p in r.paths.checkpoints.iterdir()) == ["checkpoint-70-20260102-0900"]
    r.ledger.append("checkpoints", [fake_checkpoint(r.paths, 70, 1.0, stamp="20260103-0900")])
    room = r.vault.make_room(need=1, budget=0, policy=policy)
    assert room["deleted"] == [70]
    assert sorted(p.name for p in r.paths.checkpoints.iterdir()) == ["checkpoint-70-20260103-0900"]


def test_a_fingerprint_is_each_files_size_and_hash_by_its_path(tmp_path):
    d = tmp_path / "ck"
    (d / "sub").mkdir(parents=True)
    (d / "Xweights.bin").write_bytes(b"abc")
    (d / "sub" / "f.json").write_text("{}")
    got = fingerprint(local_fs(), str(d) + "/")
    assert got == {"Xweights.bin": (3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                   "sub/f.json": (2, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")}
    top = fingerprint(local_fs(), str(d), keep=lambda rel: "/" not in rel)
    assert top == {"Xweights.bin": got["Xweights.bin"]}
    assert fingerprint(local_fs(), str(d / "Xweights.bin")) == {"": got["Xweights.bin"]}


def test_the_base_model_is_a_folder_under_the_home_before_a_hub_id(paths, tmp_path):
    from realm_kernel.hero_model import hub
    from realm_kernel.store.config import RealmConfig

    def base(value):
        return RealmConfig.model_validate({"hero": {"base_model": value}}).base_model_path(paths)

    (paths.models / "my-qwen").mkdir()
    assert base("models/my-qwen") == paths.models / "my-qwen"
    assert base("realm-test-org/no-such-model") == hub.expected_path("realm-test-org/no-such-model")
    assert base(str(tmp_path / "abs")) == tmp_path / "abs"
    assert base("") == paths.dio_mini


def test_the_settings_page_knows_each_fields_kind():
    from realm_kernel.store.config import RealmConfig
    kinds = {f["key"]: f["kind"] for f in settings.describe(RealmConfig())}
    assert kinds["vault.ship_to"] == "str" and kinds["backup.keep"] == "int"
    assert kinds["backup.auto"] == "bool" and kinds["vault.ship_retry_s"] == "float"
