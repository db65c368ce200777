"""Skill tooling outside Python: `realm skills spar/target/check-sparring/probe/passives/
primitives` on a real dio-mini checkpoint and ledger, task parameters from realm.toml and
run-time settings, and the skills' REST routes (checked from tests/services/test_taskmaster.py's
JupyterLab, one server for both)."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from realm_kernel.api import Realm
from realm_kernel.cli import app
from realm_kernel.services import taskmaster
from realm_skills.evaluation import eval_problems

from ..helpers import TEST_TOML, api
from ..skill_helpers import wrong_answer


def checkpoint_from_hero(realm: Realm, step: int) -> str:
    """dio-mini copied in as a real checkpoint directory with its ledger row."""
    name = f"checkpoint-{step}-20261201-1200"
    dest = realm.paths.checkpoints / name
    shutil.copytree(realm.paths.dio_mini, dest)
    realm.ledger.append("checkpoints", [{"step": step, "name": name, "path": str(dest), "loss": 1.0}])
    return name


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def out_json(result):
    """The command's JSON (stdout only: model loading reports progress on stderr)."""
    return json.loads(result.stdout)


def test_cli_spar_target_probe_and_check_sparring(realm_home):
    realm_home.config_file.write_text(TEST_TOML + "\n[watch]\nper_primitive = 1\n")
    realm = Realm(realm_home.home)
    checkpoint_from_hero(realm, 10)
    out = run("skills", "spar", "--skill", "bin", "--count", "4", "--step", "10", "--seed", "3")
    assert out.exit_code == 0, out.output
    session = out_json(out)
    assert session["step"] == 10 and session["count"] == 4 and session["correct"] + session["wrong"] == 4
    assert out.exit_code == 0 and run("skills", "spar", "--skill", "bin", "--step", "99").exit_code == 1
    assert run("skills", "spar", "--skill", "chess").exit_code == 2
    # Targeted practice needs an eval of the level; one with bin_add_no_carry half wrong.
    problems = eval_problems("bin", 1)
    realm.skills.record_eval(__import__("realm_kernel.evals.grading", fromlist=["grade"]).grade(
        problems, lambda q, g: [wrong_answer(p) if i % 2 else p.answer for i, p in enumerate(problems)]))
    out = run("skills", "target", "--skill", "bin", "--threshold", "0.9", "--count", "30", "--seed", "1")
    assert out.exit_code == 0, out.output
    target = out_json(out)
    assert (realm_home.queue("high") / target["quest"]).is_file()
    assert run("skills", "target", "--skill", "bin", "--threshold", "1.5").exit_code == 2
    # Sparring files in the queue are checked; a broken one fails the command.
    out = run("skills", "check-sparring")
    assert out_json(out)["bad"] == 0
    (realm_home.queue("high") / "sparring-broken.jsonl").write_text('{"messages": []}\n')
    out = run("skills", "check-sparring")
    assert out.exit_code == 1 and out_json(out)["bad"] == 1
    out = run("skills", "probe", "--step", "10")
    assert out.exit_code == 0, out.output
    assert out_json(out)["reason"] == "manual"
    hist = out_json(run("skills", "passives", "--history"))
    assert hist["probe_runs"] == 1 and len(hist["passives"]) == 11
    cat = out_json(run("skills", "passives", "--passive", "arithmetic"))
    assert cat[0]["primitives"][0]["knobs"] == {"digits": 3, "operands": 2}
    summary = out_json(run("skills", "primitives", "bin", "--summary"))
    add = next(p for p in summary if p["id"] == "bin_add_no_carry")
    assert add["n_evals"] == 1 and add["latest"] == 0.5 and 1 in add["levels"]


def test_task_parameters_from_toml_and_settings(realm_home):
    realm_home.config_file.write_text(TEST_TOML + """
[taskmaster.tasks.sparring_bin]
priority = 5
parameters = {count = 80}

[taskmaster.tasks.process_eval_queue]
parameters = {eval_size = "many", colour = 1}
""")
    realm = Realm(realm_home.home)
    tasks = {t["task_id"]: t for t in realm.tasks.list()}
    assert tasks["sparring_bin"]["parameters"] == {"skill": "bin", "count": 80}
    assert tasks["sparring_bin"]["priority"] == 5
    probs = tasks["process_eval_queue"]["problems"]
    assert any("eval_size' must be int" in p and "realm.toml: taskmaster.tasks.process_eval_queue" in p
               for p in probs)
    assert any("no parameter 'colour'" in p for p in probs)
    assert tasks["process_eval_queue"]["parameters"]["eval_size"] == 0  # the default stays
    # Run-time settings (the Scheduler page, the API) beat realm.toml, checked strictly.
    realm.tasks.set("sparring_bin", parameters={"count": 120})
    realm.tasks.set("targeted_sparring", parameters={"threshold": 1})
    tasks = {t["task_id"]: t for t in realm.tasks.list()}
    assert tasks["sparring_bin"]["parameters"]["count"] == 120
    assert tasks["targeted_sparring"]["parameters"]["threshold"] == 1.0
    for bad, why in (({"count": "x"}, "must be int"), ({"nope": 1}, "no parameter 'nope'"),
                     ({"count": -1}, ">= 0")):
        try:
            realm.tasks.set("sparring_bin", parameters=bad)
        except ValueError as e:
            assert why in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")
    assert taskmaster.effective(realm.home)["sparring_bin"].parameters["count"] == 120


def check_skill_routes(base: str) -> None:
    """The skills' REST routes on a running JupyterLab (called by test_rest_routes)."""
    listed = api(base, "GET", "skills").json()
    assert {s["skill"] for s in listed} == {"bin", "sy"} and all(s["level"] == 1 for s in listed)
    prims = api(base, "GET", "skills/sy/primitives").json()
    assert prims[0]["id"] == "sy_join" and prims[0]["levels"][0] == 1
    summary = api(base, "GET", "skills/bin/primitives/summary").json()
    assert len(summary) == 10 and summary[0]["n_evals"] == 0
    state = api(base, "GET", "skills/bin/state").json()
    assert state["state"]["level"] == 1
    assert api(base, "GET", "skills/chess/state").status_code == 404
    passives = api(base, "GET", "passives").json()
    assert len(passives) == 11 and sum(len(p["primitives"]) for p in passives) == 60
    hist = api(base, "GET", "passives/history").json()
    assert hist["probe_runs"] == 0 and len(hist["passives"]) == 11
    assert api(base, "POST", "passives/probe", json={"step": 12345}).status_code == 404
    assert api(base, "POST", "passives/probe", json={"step": "x"}).status_code == 400
    changed = api(base, "POST", "tasks/sparring_bin", json={"parameters": {"count": 64}})
    assert changed.status_code == 200 and changed.json()["parameters"]["count"] == 64
    assert api(base, "POST", "tasks/sparring_bin", json={"parameters": {"count": "x"}}).status_code == 400
