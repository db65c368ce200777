"""The Tavern's Python side without a browser: settings, achievements, hero level-ups,
the page sessions' actions (through the real Realm and a real ledger in a temp home)."""

from __future__ import annotations

import ast
import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.evals.achievements import award, hero_level_ups
from realm_kernel.store.config import load_config
from realm_skills.evaluation import eval_problems
from realm_widgets.feed import WIDGETS
from realm_widgets.pages import (
    PAGES,
    GuildSession,
    OracleSession,
    QuestSession,
    Session,
    SettingsSession,
    TavernSession,
    shared_realm,
)

from ..helpers import wait_for


@pytest.fixture
def realm(tmp_path) -> Realm:
    return Realm(tmp_path / "realm")


def test_settings_describe_validate_confirm_and_write(realm):
    fields = {f["key"]: f for f in realm.settings.describe()["fields"]}
    assert fields["training.max_length"]["critical"] and not fields["training.batch_size"]["critical"]
    assert fields["training.batch_size"]["bounds"] == {"ge": 1, "le": 4096}
    assert fields["training.optimizer"]["choices"] == ["adamw", "muon", "paged_adamw_8bit"]

    bad = realm.settings.save({"training.batch_size": 0, "nope.x": 1})
    assert not bad["ok"]
    assert "greater than or equal to 1 (got 0)" in bad["errors"]["training.batch_size"]
    assert bad["errors"]["nope.x"] == "unknown setting"
    assert not realm.paths.config_file.exists()  # nothing written

    assert realm.settings.save({"training.batch_size": "4"}) == {
        "ok": True, "changed": ["training.batch_size"], "path": str(realm.paths.config_file)}
    assert load_config(realm.paths.home).training.batch_size == 4

    ask = realm.settings.save({"training.max_length": 512})
    assert ask == {"ok": False, "needs_confirmation": ["training.max_length"]}
    assert load_config(realm.paths.home).training.max_length == 256
    assert realm.settings.save({"training.max_length": 512}, confirm=True)["ok"]
    cfg = load_config(realm.paths.home)
    assert (cfg.training.max_length, cfg.training.batch_size) == (512, 4)  # earlier edits kept
    assert realm.settings.save({"training.max_length": 512})["ok"]  # unchanged: no question
    assert any(e["kind"] == "settings_changed" for e in realm.reports.events(20))


def test_a_broken_realm_toml_is_reported_and_replaced_by_a_valid_save(realm):
    realm.paths.config_file.write_text("[training\nbatch_size = ")
    assert "not valid TOML" in realm.settings.describe()["error"]
    assert realm.settings.save({"training.batch_size": 2})["ok"]
    assert realm.settings.describe()["error"] is None


def _metrics(realm: Realm, steps: range) -> None:
    realm.ledger.append("metrics", [{"run_id": "r", "quest": "q", "step": s, "local_step": s,
                                     "loss": 1.0} for s in steps])


def test_achievements_are_awarded_once_with_dates(realm):
    assert award(realm.ledger) == []
    _metrics(realm, range(1, 1001))
    realm.ledger.append("quests", [{"quest_id": "q.jsonl", "status": "completed"}])
    new = {a["achievement_id"] for a in award(realm.ledger)}
    assert new == {"quests_1", "steps_1000"}
    assert award(realm.ledger) == []  # once each
    realm.ledger.append("achievements", [{"achievement_id": "quests_1", "name": "First quest",
                                          "description": "", "step": 1}])  # a racing process
    earned = realm.reports.achievements()
    assert [a["achievement_id"] for a in earned].count("quests_1") == 1
    assert all(a["date"][:4].isdigit() for a in earned)
    toasts = realm.reports.notable_events(("achievement",))
    assert {t["message"] for t in toasts} == {"Achievement unlocked: 📜 First quest",
                                              "Achievement unlocked: 👣 1k steps"}


def test_skill_level_and_sparring_milestones(realm):
    problems = eval_problems("bin", 1, size=10)
    for _ in range(3):  # three evals at 100% level BIN up to 2
        result = skills.run_eval("bin", 1, [p.answer for p in problems], problems=problems)
        realm.skills.record_eval(result, 5, "c")
    ids = {a["achievement_id"] for a in award(realm.ledger)}
    assert {"skill_bin_2", "first_eval"} <= ids
    realm.ledger.append("quests", [{"quest_id": "sparring-x.jsonl", "status": "queued", "examples": 300}])
    assert [a["achievement_id"] for a in award(realm.ledger)] == ["sparring_100"]


def test_hero_level_up_events_for_each_thousand_crossed(realm):
    assert hero_level_ups(realm.ledger, "DIO", 998, 999) == []
    assert hero_level_ups(realm.ledger, "DIO", 999, 2001) == [1, 2]
    msgs = [e["message"] for e in realm.reports.notable_events(("hero_level_up",))]
    assert sorted(msgs) == ["Level up! DIO reached Level 1", "Level up! DIO reached Level 2"]


def test_sessions_act_once_and_show_refusals(realm):
    q = QuestSession(realm)
    bad = base64.b64encode(b'{"x": 1}\n').decode()
    n = q.act({"name": "upload", "nonce": 1, "filename": "bad.jsonl", "content_b64": bad})
    assert not n["ok"] and "REJECTED" in n["detail"] and "line 1" in n["message"]
    assert q.act({"name": "upload", "nonce": 1, "filename": "x.jsonl", "content_b64": bad}) is None
    assert q.act({"name": "launch_missiles", "nonce": 2})["message"] == "unknown action 'launch_missiles'"
    good = base64.b64encode(b'{"prompt": "a", "completion": "b"}\n').decode()
    assert q.act({"name": "upload", "nonce": 3, "filename": "ok.jsonl", "content_b64": good,
                  "priority": "low"})["ok"]
    assert (realm.paths.inbox / "low" / "ok.jsonl").exists()
    assert q.snapshot()["notice"]["nonce"] == 3
    t = TavernSession(realm)
    assert t.act({"name": "pause", "nonce": 1})["ok"] and realm.paths.control_file("pause").exists()
    assert t.act({"name": "resume", "nonce": 2})["ok"] and not realm.paths.control_file("pause").exists()


def test_settings_session_previews_without_writing(realm):
    s = SettingsSession(realm)
    s.act({"name": "preview", "nonce": 1, "changes": {"training.batch_size": -3}})
    assert "training.batch_size" in s.snapshot()["errors"]
    assert not realm.paths.config_file.exists()
    s.act({"name": "save", "nonce": 2, "changes": {"hero.base_model": "/elsewhere"}})
    assert s.snapshot()["confirm"] == ["hero.base_model"]


def test_guild_session_reads_levels_and_the_heatmap(realm):
    problems = eval_problems("bin", 1, size=10)
    answers = [p.answer if i % 2 else "wrong" for i, p in enumerate(problems)]
    realm.skills.record_eval(skills.run_eval("bin", 1, answers, problems=problems), 10, "checkpoint-10")
    bin_ = next(g for g in GuildSession(realm).snapshot()["guild"] if g["skill"] == "bin")
    assert bin_["level"] == 1 and len(bin_["recent"]) == 1
    assert bin_["heatmap"]["steps"] == [10] and bin_["heatmap"]["cells"]
    assert {w["primitive_id"] for w in bin_["weak"]} <= set(bin_["heatmap"]["primitives"])


def test_every_page_has_a_session_the_oracle_too():
    assert set(PAGES) == {"tavern", "quests", "oracle", "vault", "settings", "scheduler", "guild"}
    for page in PAGES.values():
        assert issubclass(page.session, Session)
    assert PAGES["oracle"].session is OracleSession and "oracle" in PAGES["oracle"].widgets


def test_one_realm_per_home_in_a_process(tmp_path, monkeypatch):
    a = shared_realm(tmp_path / "a")
    assert shared_realm(str(tmp_path / "a") + "/") is a and shared_realm(tmp_path / "b") is not a
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "a"))
    assert shared_realm() is a  # the home REALM_HOME names
    assert QuestSession().realm is a and OracleSession().realm is a  # one Oracle pool for all pages


def test_oracle_session_acts_once_with_dict_notices(realm_home):

    s = OracleSession(Realm(realm_home.home))
    first = s.snapshot()
    assert first["checkpoints"][0]["step"] == 0 and first["hosts"] == ["local"]
    assert {k["id"] for k in first["skills"]} == set(skills.skill_ids()) and first["notice"] is None
    refused = s.act({"name": "chat", "nonce": 1, "host": "local", "step": 0, "message": "hi"})
    assert refused["ok"] is False and "Step 0 not loaded" in refused["message"]
    assert s.act({"name": "chat", "nonce": 1, "host": "local", "step": 0, "message": "hi"}) is None
    assert s.act({"name": "dance", "nonce": 2})["message"] == "unknown action 'dance'"
    load = s.act({"name": "load", "nonce": 3, "host": "local", "step": 0})
    assert load == {"ok": True, "action": "load", "message": "loading step 0 on local…", "nonce": 3}
    wait_for(lambda: not s.snapshot()["notice"]["message"].startswith("loading"), 120, "the load to end")
    loaded = s.snapshot()
    assert loaded["notice"] == {**load, "message": "loaded dio-mini on local"}
    assert loaded["loaded"] == [{"step": 0, "model": "dio-mini"}]
    assert s.act({"name": "chat", "nonce": 4, "host": "local", "step": 0, "message": "What is ①+①?"})["ok"]
    wait_for(lambda: not s.snapshot()["panes"]["left"]["busy"], 120, "the reply")
    left = s.snapshot()["panes"]["left"]
    assert [m["role"] for m in left["messages"]] == ["user", "assistant"] and left["model"] == "dio-mini"
    assert s.act({"name": "unload", "nonce": 5, "host": "local", "step": 0})["message"] == "unloaded step 0"
    assert s.snapshot()["loaded"] == []


WIDGETS_DIR = Path(__file__).resolve().parents[2] / "widgets"
FORMATTERS = {"num", "pct", "gb", "duration"}  # the prelude's, one output each (docs/tavern.md)


def test_every_widget_esm_carries_the_prelude_once_and_no_widget_redefines_it(tmp_path):
    prelude = (WIDGETS_DIR / "prelude.js").read_text(encoding="utf-8")
    helpers = set(re.findall(r"^(?:function|const|let|var|class)\s+([A-Za-z_$][\w$]*)", prelude, re.M))
    assert {"el_", "button", "sender", "state_", "notice_", "showNotice", "follow"} <= helpers
    assert FORMATTERS <= helpers  # so the check below refuses a second definition of one
    assert set(WIDGETS) == {p.stem for p in WIDGETS_DIR.glob("*.js")} - {"prelude"}
    for name, w in WIDGETS.items():
        own = (WIDGETS_DIR / f"{name}.js").read_text(encoding="utf-8")
        assert w.esm.startswith(prelude) and w.esm.endswith(own) and w.esm.count(prelude) == 1, name
        defined = re.findall(r"(?:function\s+|(?:const|let|var|class)\s+)([A-Za-z_$][\w$]*)", own)
        assert not helpers & set(defined), f"{name}.js redefines {helpers & set(defined)}"
        assert "document.createElement(" not in own and "model.save_changes(" not in own, name
        assert "export default" in own, name
        assert not re.search(r"^\s*import\b", own, re.M), name  # no URL for a host to resolve
        if shutil.which("node"):  # the composed module parses as one ESM
            mod = tmp_path / f"{name}.mjs"
            mod.write_text(w.esm, encoding="utf-8")
            check = subprocess.run(["node", "--check", str(mod)], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr


def test_no_widget_formats_numbers_its_own_way():
    """Numbers go through the prelude's formatters, so one value reads the same on every
    page: no widget defines a formatter by another name or rounds a share inline."""
    for name in WIDGETS:
        own = (WIDGETS_DIR / f"{name}.js").read_text(encoding="utf-8")
        assert not re.search(r"(?:function\s+|(?:const|let|var)\s+)fmt\b", own), name  # num's old twin
        assert "Math.round(100" not in own and "/ 1e9)" not in own, name  # pct's and gb's work


SHARED_FALLBACKS = "fff|ffffff|f5f3fb|e7e3f3|1d1a2e|6b6785|ddd8ee|c9c3dd|eee"  # prelude.css's palette


def test_every_widget_css_carries_the_shared_stylesheet_once():
    shared = (WIDGETS_DIR / "prelude.css").read_text(encoding="utf-8")
    assert ".realm-widget {" in shared and ".realm-card {" in shared
    for name, w in WIDGETS.items():
        own = (WIDGETS_DIR / f"{name}.css").read_text(encoding="utf-8")
        assert w.css.startswith(shared) and w.css.endswith(own) and w.css.count(shared) == 1, name
        # what is shared is not repeated: the font line, the card's shadow, the theme fallbacks
        assert "font-family: var(--jp-ui-font-family" not in own, name
        assert "box-shadow: 0 2px 8px" not in own, name
        assert not re.search(rf"var\(--jp-[\w-]+, #(?:{SHARED_FALLBACKS})\)", own), name  # use --realm-*
        js = (WIDGETS_DIR / f"{name}.js").read_text(encoding="utf-8")
        assert f'el.classList.add("realm-widget", "realm-{name.replace("_", "-")}")' in js, name


def test_both_hosts_load_the_composed_esm_and_css():
    from realm_widgets.jupyter import widget_class
    from realm_widgets.panel_components import component
    shared = (WIDGETS_DIR / "prelude.css").read_text(encoding="utf-8")
    for name, w in WIDGETS.items():
        assert widget_class(name)._esm == w.esm and widget_class(name)._css == w.css
        assert component(name)._esm == w.esm and component(name)._stylesheets == [w.css]
        assert w.css.startswith(shared), name


def _imports(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            mods.add(node.module or "")
    return mods


def test_widgets_reach_the_realm_only_through_the_api_and_nothing_imports_widgets():
    for path in WIDGETS_DIR.glob("*.py"):
        below = {m for m in _imports(path) if m.split(".")[0] in ("realm_kernel", "realm_skills")}
        assert below <= {"realm_kernel.api"}, f"{path.name} imports {below - {'realm_kernel.api'}}"
    kernel = WIDGETS_DIR.parent / "realm_kernel"
    for path in kernel.rglob("*.py"):
        assert not {m for m in _imports(path) if m.split(".")[0] == "realm_widgets"}, path
    assert not hasattr(Realm, "show")  # widgets.show(page, home) shows a page


def test_the_trainer_callback_announces_a_level_up_when_a_thousand_is_crossed(realm):
    from types import SimpleNamespace

    from realm_kernel.evals.achievements import hero_progress
    from realm_kernel.train.callbacks import RealmCallback
    job = SimpleNamespace(step_offset=0, on_progress=hero_progress(realm.ledger, "DIO"))
    cb = RealmCallback(paths=realm.paths, ledger=realm.ledger, job=job)
    cb._progress_step = 998
    cb._progress(999)
    cb._progress(1000)
    cb._progress(1001)
    msgs = [e["message"] for e in realm.reports.notable_events(("hero_level_up",))]
    assert msgs == ["Level up! DIO reached Level 1"]
