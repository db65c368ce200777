"""Path confinement (store/confine.py) and zones (store/zones.py), through every surface
that takes a path: the function itself, the vault (exports, registrations), the Panel
Vault page's session, the notebook widget's action path, and the CLI. The REST routes'
cases are in tests/reliability/test_api_security.py (one real JupyterLab)."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from typer.testing import CliRunner

from realm_kernel.api import Realm
from realm_kernel.cli import app
from realm_kernel.store.confine import PathRefused, check_relative, confine
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.zones import ZoneRefused, check_zone


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "inside").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (r / "link-out").symlink_to(tmp_path / "outside")
    (r / "link-in").symlink_to(r / "inside")
    return r


# (input, the fragment of the refusal that names why)
HOSTILE = [
    ("../outside", "'..'"),
    ("inside/../../outside", "'..'"),
    ("%2e%2e/outside", "URL-encoded"),
    ("%2E%2E%2Foutside", "URL-encoded"),
    ("~/x", "'~'"),
    ("~root/x", "'~'"),
    ("inside/\x00x", "it contains a NUL byte"),
    ("", "empty"),
    ("link-out/x", "outside through a symlink"),
    ("link-out", "outside through a symlink"),
    ("/etc/passwd", "it is outside"),
    ("..\\outside", "'..'"),
]


@pytest.mark.parametrize("given,why", HOSTILE)
def test_confine_refuses_naming_the_input_and_the_root(root, given, why):
    with pytest.raises(PathRefused) as e:
        confine(root, given, what="export destination")
    msg = str(e.value)
    assert why in msg and repr(given) in msg and str(root.resolve()) in msg
    assert msg.startswith("export destination")


def test_confine_accepts_what_stays_inside(root):
    assert confine(root, "inside/new") == root.resolve() / "inside" / "new"
    assert confine(root, root / "inside" / "x") == root.resolve() / "inside" / "x"
    assert confine(root, "link-in/x") == root.resolve() / "inside" / "x"  # a link that stays in
    with pytest.raises(PathRefused, match="the root itself"):
        confine(root, ".")
    assert confine(root, ".", allow_root=True) == root.resolve()
    assert check_relative("a/b.jsonl") == "a/b.jsonl"
    for bad in ("/abs", "../x", "%2e%2e", "~/x", "a\x00b"):
        with pytest.raises(PathRefused):
            check_relative(bad)
    with pytest.raises(PathRefused, match="must be a path"):
        confine(root, 5)


# -- the surfaces that export a checkpoint --------------------------------------------
@pytest.fixture
def realm(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    r = Realm(paths.home)
    d = paths.checkpoints / "checkpoint-20-20260101-1200"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"w" * 20)
    (d / ".ledger.json").write_text(json.dumps({"step": 20, "name": d.name}))
    r.ledger.append("checkpoints", [{"step": 20, "name": d.name, "path": str(d), "loss": 1.0}])
    (tmp_path / "outside").mkdir()
    paths.exports.mkdir()
    (paths.exports / "link-out").symlink_to(tmp_path / "outside")
    return r


def export_inputs(tmp_path):
    return [str(tmp_path / "outside" / "dio"), "../escape", "%2e%2e/escape", "~/dio",
            "link-out/dio", "a\x00b", str(tmp_path / "home" / "checkpoints" / "copy")]


def nothing_escaped(realm, tmp_path):
    assert list((tmp_path / "outside").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "outside"]
    assert sorted(p.name for p in realm.paths.exports.iterdir()) == ["link-out"]


def test_export_is_confined_through_the_api(realm, tmp_path):
    for dest in export_inputs(tmp_path):
        with pytest.raises(PathRefused, match="export destination .* refused"):
            realm.checkpoints.export(20, dest)
    nothing_escaped(realm, tmp_path)
    assert realm.checkpoints.export(20, "mine") == realm.paths.exports / "mine"


def test_export_is_confined_on_the_panel_vault_page(realm, tmp_path):
    from realm_widgets.pages import VaultSession
    session = VaultSession(realm)
    for dest in export_inputs(tmp_path):
        notice = session.act({"name": "export", "nonce": uuid.uuid4().hex, "step": 20, "dest": dest})
        assert notice["ok"] is False and "refused" in notice["message"], notice
    nothing_escaped(realm, tmp_path)
    notice = session.act({"name": "export", "nonce": "ok", "step": 20, "dest": "page-copy"})
    assert notice["ok"] and (realm.paths.exports / "page-copy" / "config.json").is_file()


def test_export_is_confined_through_the_notebook_widget(realm, tmp_path):
    """The notebook's path: an anywidget's synced `action` -> bind's on_action -> the
    session (what realm_widgets.jupyter.page wires up), the refusal shown in its state."""
    from realm_widgets.jupyter import widget_class
    from realm_widgets.pages import VaultSession, bind
    w = widget_class("vault_browser")()
    _, on_action = bind(VaultSession(realm), [w])
    w.observe(lambda change: on_action(change["new"]), names="action")
    for dest in export_inputs(tmp_path):
        w.action = {"name": "export", "nonce": uuid.uuid4().hex, "step": 20, "dest": dest}
        assert w.notice["ok"] is False and "refused" in w.notice["message"]
    nothing_escaped(realm, tmp_path)


def test_export_is_confined_through_the_cli(realm, tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(realm.paths.home))
    for dest in export_inputs(tmp_path):
        if "\x00" in dest:
            continue  # an argv cannot hold a NUL byte
        res = CliRunner().invoke(app, ["--home", str(realm.paths.home), "vault", "export", "20", dest])
        assert res.exit_code == 2 and "refused" in res.output, (dest, res.output)
    nothing_escaped(realm, tmp_path)


def test_registrations_are_confined(realm, tmp_path):
    (tmp_path / "outside" / "x.jsonl").write_text("{}")
    (realm.paths.home / "data-link").symlink_to(tmp_path / "outside")
    for path in (str(tmp_path / "outside" / "x.jsonl"), "data-link/x.jsonl", "%2e%2e/outside",
                 "~/x.jsonl", "a\x00b"):
        with pytest.raises(PathRefused, match="registered path .* refused"):
            realm.vault.register(path)


# -- zones -----------------------------------------------------------------------------
def test_zone_roots_and_schemes(tmp_path):
    home = (tmp_path / "realm" / "home").resolve()
    home.mkdir(parents=True)
    (tmp_path / "nas").mkdir()
    refused = {
        "/": "file system's root", "file:///": "file system's root",
        str(tmp_path / "realm"): "holds the realm home", str(home): "holds the realm home",
        f"file://{tmp_path}": "holds the realm home", str(home / "zone"): "inside the realm home",
        f"{tmp_path}/nas/../realm": "'..'", "webhdfs://127.0.0.1:9870/x": "not allowed",
        "http://127.0.0.1/x": "not allowed", "https://example.invalid/x": "not allowed",
        "ftp://127.0.0.1/x": "not allowed", "relative/dir": "absolute folder", "": "needs a url",
        "~/nas": "'~'", "/tmp/%2e%2e/etc": "URL-encoded",
    }
    for url, why in refused.items():
        with pytest.raises(ZoneRefused, match=why):
            check_zone(url, home)
    (tmp_path / "nas-link").symlink_to(tmp_path / "realm")
    with pytest.raises(ZoneRefused, match="holds the realm home"):
        check_zone(str(tmp_path / "nas-link"), home)  # a link is judged by where it leads
    assert check_zone(str(tmp_path / "nas"), home) == "local"
    assert check_zone(f"file://{tmp_path / 'nas'}", home) == "fsspec"
    assert check_zone("s3://bucket/realm", home) == "fsspec"


def test_zones_are_added_only_when_confirmed_and_checked_at_use(realm, tmp_path):
    nas = tmp_path / "outside"
    with pytest.raises(ZoneRefused, match="added by a person"):
        realm.vault.add_zone("nas", str(nas))
    assert [z["zone_id"] for z in realm.vault.zones()] == ["local"]
    realm.vault.add_zone("nas", str(nas), confirmed=True)
    # A zone recorded before the rules (straight into the ledger) is refused when used.
    realm.ledger.append("zones", [{"zone_id": "root", "url": "/", "kind": "local",
                                   "status": "active", "detail": ""}])
    with pytest.raises(ZoneRefused, match="file system's root"):
        realm.vault.transfer("checkpoint_20", "root")
    assert realm.vault.transfer("checkpoint_20", "nas").zone == "nas"


def test_a_transfer_never_overwrites_a_different_file(realm, tmp_path):
    nas = tmp_path / "outside"
    realm.vault.add_zone("nas", str(nas), confirmed=True)
    rel = "checkpoints/checkpoint-20-20260101-1200"
    (nas / rel).mkdir(parents=True)
    (nas / rel / "config.json").write_text('{"another": "model"}')
    with pytest.raises(FileExistsError, match="already holds a different"):
        realm.vault.transfer("checkpoint_20", "nas")
    res = CliRunner().invoke(app, ["--home", str(realm.paths.home), "vault", "transfer",
                                   "checkpoint_20", "nas"])
    assert res.exit_code == 2 and "already holds a different" in res.output, res.output
    assert (nas / rel / "config.json").read_text() == '{"another": "model"}'
    assert not (nas / rel / "model.safetensors").exists()
    # The same bytes already there: a no-op, recorded as a location.
    (nas / rel / "config.json").write_text("{}")
    (nas / rel / "model.safetensors").write_bytes(b"w" * 20)
    (nas / rel / ".ledger.json").write_text(
        (realm.paths.home / rel / ".ledger.json").read_text())
    before = {p: p.stat().st_mtime_ns for p in (nas / rel).iterdir()}
    assert realm.vault.transfer("checkpoint_20", "nas").zone == "nas"
    assert {p: p.stat().st_mtime_ns for p in (nas / rel).iterdir()} == before
    # And the other way: a fetch into the home never replaces a different local file.
    local = realm.paths.home / rel / "config.json"
    local.write_text('{"edited": true}')
    with pytest.raises(FileExistsError, match="already holds a different"):
        realm.vault.transfer("checkpoint_20", "local", from_zone="nas")
    assert local.read_text() == '{"edited": true}'
    assert os.path.isdir(realm.paths.home / rel)
