"""Every `realm` command, from the typer app's own registry: its --help, and one real call
on a temp realm whose effect is checked (a file moved, a row written, a model loaded).

A command registered without an entry in CALLS fails `test_every_command_has_an_entry`
with its name: add a function decorated `@call("group name")` below."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from realm_kernel.api import Realm
from realm_kernel.cli import app
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.process import pid_alive
from realm_kernel.store.status import DAEMON, WEAVER, read_status
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.mixed import mixed_examples

from ..helpers import child_env, free_port, make_home, wait_for

pytestmark = pytest.mark.slow


def registered(group=None, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every leaf command of the app, as "group name" paths."""
    group = group or typer.main.get_command(app)
    out = []
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            out += registered(cmd, (*prefix, name))
        else:
            out.append(" ".join((*prefix, name)))
    return out


@dataclass
class Ctx:
    """A realm trained 20 steps (checkpoints at 10 and 20), a scratch folder, a runner."""
    paths: RealmPaths
    tmp: Path
    hero: Path

    def run(self, *args: str, code: int = 0, home: Path | None = None):
        res = CliRunner().invoke(app, ["--home", str(home or self.paths.home), *args],
                                 prog_name="realm")
        out = res.output + (res.stderr if res.stderr_bytes is not None else "")
        assert res.exit_code == code, f"realm {' '.join(args)} -> {res.exit_code}: {out}\n{res.exception!r}"
        return res

    def json(self, *args: str) -> object:
        return json.loads(self.run(*args).stdout)

    def quest(self, name: str, n: int = 8, folder: Path | None = None, seed: int = 0) -> Path:
        path = (folder or self.tmp) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(e) + "\n" for e in mixed_examples(n, seed=seed)))
        return path

    def fresh_home(self, name: str) -> RealmPaths:
        return make_home(self.tmp / name, self.hero)

    @property
    def realm(self) -> Realm:
        return Realm(self.paths.home)


CALLS: dict[str, Callable[[Ctx], None]] = {}


def call(path: str):
    def register(fn):
        CALLS[path] = fn
        return fn
    return register


def service(ctx: Ctx, args: list[str], ready: Callable[[int], bool], what: str,
            home: RealmPaths | None = None) -> None:
    """A long-running command as a real subprocess: running once `ready(pid)`, then
    SIGTERM, and a clean exit."""
    home = home or ctx.paths
    log = open(ctx.tmp / f"{what}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "realm_kernel.cli", *args], env=child_env(home.home),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is None and ready(proc.pid), 120, what)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0, (ctx.tmp / f"{what}.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# -- the hero and the daemon ---------------------------------------------------------

@call("build-dio-mini")
def _(ctx):
    other = RealmPaths.at(ctx.tmp / "built").ensure()
    res = ctx.run("build-dio-mini", "--seed", "1", home=other.home)
    assert str(other.dio_mini) in res.stdout
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(other.dio_mini)
    meta = json.loads((other.dio_mini / "dio_mini.json").read_text())
    assert sum(p.numel() for p in model.parameters()) == meta["parameters"]


@call("daemon")
def _(ctx):
    home = ctx.fresh_home("daemon-home")
    service(ctx, ["daemon"], lambda pid: read_status(home, DAEMON).get("pid") == pid, "daemon", home)


@call("play")
def _(ctx):
    # --headless: the Weaver and its daemon without JupyterLab (the lab is started by
    # `realm play` in tests/helpers.py:start_lab for the server and browser tests).
    home = ctx.fresh_home("play-home")
    service(ctx, ["play", "--headless"], lambda pid: read_status(home, WEAVER).get("pid") == pid
            and pid_alive(read_status(home, DAEMON).get("pid")), "play-headless", home)
    daemon = read_status(home, DAEMON)["pid"]
    wait_for(lambda: not pid_alive(daemon), 60, "the Weaver's daemon to stop with it")


@call("status")
def _(ctx):
    out = ctx.json("status")
    assert out["hero"]["xp"] == ctx.realm.hero()["xp"] and out["training"] == ctx.realm.training.status()
    assert out["health"]["home"] == str(ctx.paths.home)


def control(ctx, action: str, present: set[str], absent: set[str]) -> None:
    out = ctx.json(action)
    assert out["action"] == action
    for a in present:
        assert ctx.paths.control_file(a).exists(), a
    for a in absent:
        assert not ctx.paths.control_file(a).exists(), a
    assert ctx.realm.sql(f"SELECT * FROM events WHERE kind = 'control' AND message = '{action} requested'")


@call("pause")
def _(ctx):
    control(ctx, "pause", {"pause"}, set())


@call("stop")
def _(ctx):
    control(ctx, "stop", {"stop"}, set())


@call("resume")
def _(ctx):
    ctx.run("pause")
    control(ctx, "resume", set(), {"pause", "stop"})


@call("skip")
def _(ctx):
    control(ctx, "skip", {"skip"}, set())
    ctx.paths.control_file("skip").unlink()


@call("train")
def _(ctx):
    home = ctx.fresh_home("train-home")
    quest = ctx.quest("train.jsonl", 32)
    out = home.home.parent / "train-out"
    res = ctx.run("train", str(quest), "--max-steps", "2", "--output-dir", str(out), home=home.home)
    result = json.loads(res.stdout[res.stdout.rindex("{\n"):])
    assert result["success"] and result["global_step"] == 2
    assert result["last_checkpoint_path"].startswith(str(out / "checkpoints"))
    run = RealmPaths.at(out)
    assert Ledger(run).scalar("SELECT count(*) FROM metrics WHERE loss IS NOT NULL") == 2
    # DIO's realm is untouched: no checkpoint, no step, no resume point.
    dio = Ledger(home)
    assert dio.scalar("SELECT count(*) FROM metrics") == 0
    assert dio.scalar("SELECT count(*) FROM checkpoints") == 0
    assert not list(home.checkpoints.glob("checkpoint-*"))
    # Without --output-dir: a folder of its own under <home>/standalone/.
    res = ctx.run("train", str(quest), "--max-steps", "1", home=home.home)
    assert "/standalone/train-" in json.loads(res.stdout[res.stdout.rindex("{\n"):])["last_checkpoint_path"]
    assert Ledger(home).scalar("SELECT count(*) FROM checkpoints") == 0
    # The 4B recipe says its estimate first and refuses a card it cannot fit, with the numbers.
    big = home.home.parent / "qwen3-4b"
    big.mkdir()
    from realm_kernel.train.presets import PRESETS
    (big / "config.json").write_text(json.dumps({**PRESETS["qwen3-4b"], "model_type": "qwen3"}))
    res = ctx.run("train", str(quest), "--preset", "qwen3-4b-24gb", "--model", str(big), "--vram-gb", "12",
                  home=home.home, code=2)
    assert "VRAM estimate:" in res.stderr and "exceeds the card's 12.0 GiB" in res.stderr, res.stderr
    assert not (home.home / "standalone").exists() or len(list((home.home / "standalone").iterdir())) == 1
    res = ctx.run("train", str(quest), "--preset", "nope", home=home.home, code=2)
    assert "unknown training preset 'nope'" in res.stderr


@call("vram")
def _(ctx):
    from realm_kernel.hero_model.vram import count_params
    from realm_kernel.train.presets import PRESETS
    assert ctx.json("vram", "qwen3-0.6b", "--json")["params"] == count_params(PRESETS["qwen3-0.6b"])
    local = ctx.json("vram", str(ctx.paths.dio_mini), "--json", "--dtype", "float32")
    assert local["weights"] == 4 * local["params"]
    assert "vram:" in ctx.run("vram", str(ctx.tmp / "nowhere"), code=2).output


@call("hero profile")
def _(ctx):
    out = ctx.json("hero", "profile", "--json")
    assert out["profile"] == "dio-mini" and out["chosen_by"] == "default"
    assert out["values"]["training.batch_size"] == {"value": 8, "source": "realm.toml (profile "
                                                                          "dio-mini would give 16)"}
    res = ctx.run("hero", "profile", "qwen3-0.6b")  # this machine's card, or the CPU fallback
    assert "Hero profile: qwen3-0.6b" in res.stdout and "training.learning_rate" in res.stdout
    assert "unknown hero profile 'nope'" in ctx.run("hero", "profile", "nope", code=2).stderr


# -- quests ---------------------------------------------------------------------------

@call("quest add")
def _(ctx):
    src = ctx.quest("added.jsonl", seed=1)
    ctx.run("quest", "add", str(src), "--priority", "high")
    assert (ctx.paths.inbox / "high" / "added.jsonl").read_text() == src.read_text()
    bad = ctx.tmp / "bad.jsonl"
    bad.write_text("{oops\n")
    assert "rejected" in ctx.run("quest", "add", str(bad), code=2).output
    assert not (ctx.paths.inbox / "bad.jsonl").exists()


@call("quest validate")
def _(ctx):
    good = ctx.quest("valid.jsonl", seed=2)
    report = json.loads(ctx.run("quest", "validate", str(good), "--json").stdout)
    assert report["ok"] and report["examples"] == 8 and report["depth"] == "standard"
    # --depth, and --level, its old name, still accepted
    assert "(quick check)" in ctx.run("quest", "validate", str(good), "--depth", "quick").stdout
    assert "(quick check)" in ctx.run("quest", "validate", str(good), "--level", "quick").stdout
    bad = ctx.tmp / "invalid.jsonl"
    bad.write_text(good.read_text() + "{oops\n")
    assert "invalid JSON" in ctx.run("quest", "validate", str(bad), code=2).output


@call("quest priority")
def _(ctx):
    ctx.quest("prio.jsonl", folder=ctx.paths.queue("normal"), seed=3)
    assert ctx.json("quest", "priority", "prio.jsonl", "low")["priority"] == "low"
    assert (ctx.paths.queue("low") / "prio.jsonl").is_file()
    assert not (ctx.paths.queue("normal") / "prio.jsonl").exists()
    assert "no quest named" in ctx.run("quest", "priority", "ghost.jsonl", "low", code=2).output


@call("quest move")
def _(ctx):
    from realm_kernel.quests.queue import queued
    folder = ctx.paths.queue("high")
    for i, name in enumerate(("m-old.jsonl", "m-new.jsonl")):
        os.utime(ctx.quest(name, folder=folder, seed=4 + i), (1000 + i, 1000 + i))
    out = ctx.json("quest", "move", "m-new.jsonl", "0")
    assert out["order"][:2] == ["m-new.jsonl", "m-old.jsonl"]
    assert [p.name for p in queued(ctx.paths, "high")][:2] == ["m-new.jsonl", "m-old.jsonl"]
    for name in out["order"]:
        (folder / name).unlink()


@call("quest remove")
def _(ctx):
    ctx.quest("gone.jsonl", folder=ctx.paths.queue("failed"), seed=6)
    ctx.run("quest", "remove", "gone.jsonl")
    assert not (ctx.paths.queue("failed") / "gone.jsonl").exists()
    assert "no quest named" in ctx.run("quest", "remove", "gone.jsonl", code=2).output


@call("quest generate")
def _(ctx):
    res = ctx.run("quest", "generate", "bin", "--level", "2", "--count", "5", "--seed", "9")
    path = Path(res.stdout.strip())
    assert path.parent == ctx.paths.inbox and len(path.read_text().splitlines()) == 5
    path.unlink()
    assert "skill" in ctx.run("quest", "generate", "nope", code=2).output.lower()


@call("quest list")
def _(ctx):
    ctx.quest("listed.jsonl", folder=ctx.paths.queue("low"), seed=7)
    q = ctx.json("quest", "list")
    assert set(q) == {"processing", "high", "normal", "low", "failed", "recently_completed"}
    assert "listed.jsonl" in [e["name"] for e in q["low"]]
    (ctx.paths.queue("low") / "listed.jsonl").unlink()


# -- skills (their outputs are checked in depth by tests/evals/test_skills_eval.py) --------

@call("skills list")
def _(ctx):
    assert {s["skill"] for s in ctx.json("skills", "list")} == {"bin", "sy"}


@call("skills show")
def _(ctx):
    assert ctx.json("skills", "show", "bin", "--level", "3")["level"] == 3


@call("skills catalog")
def _(ctx):
    assert sum(len(v) for v in ctx.json("skills", "catalog").values()) == 60  # 11 passives


@call("skills generate")
def _(ctx):
    lines = ctx.run("skills", "generate", "sy", "--level", "2", "--count", "3").stdout.splitlines()
    assert [json.loads(x)["level"] for x in lines] == [2, 2, 2]


@call("skills eval")
def _(ctx):
    from realm_skills.evaluation import eval_problems
    answers = ctx.tmp / "answers.jsonl"
    problems = eval_problems("bin", 1)
    answers.write_text("".join(json.dumps({"answer": p.answer}) + "\n" for p in problems))
    out = ctx.json("skills", "eval", "bin", str(answers), "--level", "1", "--step", "20")
    assert out["accuracy"] == 1.0
    assert ctx.realm.sql(f"SELECT accuracy FROM evals WHERE run_id = '{out['run_id']}'") == [
        {"accuracy": 1.0}]


@call("skills eval-report")
def _(ctx):
    rep = ctx.json("skills", "eval-report", "bin")
    assert rep["state"]["level"] >= 1 and "evals" in rep


# -- the Oracle -----------------------------------------------------------------------

@call("oracle chat")
def _(ctx):
    res = ctx.run("oracle", "chat", "--step", "20", "-m", "①+①?", "--max-new-tokens", "4")
    ckpt = ctx.realm.checkpoints.get(20)
    assert f"path: {ckpt.path}" in res.stderr and ckpt.name in res.stderr
    assert "error" in ctx.run("oracle", "chat", "--step", "77", "-m", "hi", code=1).stderr


@call("oracle status")
def _(ctx):
    assert ctx.json("oracle", "status") == ctx.realm.oracle.status()


@call("oracle serve")
def _(ctx):
    from realm_kernel.oracle.client import read_advertisement
    home = ctx.fresh_home("oracle-serve")
    service(ctx, ["oracle", "serve", f"--port={free_port()}"],
            lambda pid: (read_advertisement(home.oracle_owner) or {}).get("pid") == pid, "oracle-serve", home)
    assert not home.oracle_owner.exists()  # withdrawn on the way out


@call("oracle checkpoints")
def _(ctx):
    assert [c["step"] for c in ctx.json("oracle", "checkpoints")][:1] == [0]
    assert {10, 20} <= {c["step"] for c in ctx.json("oracle", "checkpoints")}


# -- the ledger -----------------------------------------------------------------------

@call("ledger sql")
def _(ctx):
    assert ctx.json("ledger", "sql", "SELECT count(*) AS n FROM metrics WHERE loss IS NOT NULL "
                    "AND run_id = 'cli'") == [{"n": 20}]
    assert "SQL error" in ctx.run("ledger", "sql", "SELECT * FROM nowhere", code=2).output
    leak = ctx.tmp / "leak.csv"
    assert "--unsafe" in ctx.run("ledger", "sql", f"COPY metrics TO '{leak}'", code=2).output
    assert not leak.exists()  # read-only by default; tests/store/test_ledger_sql.py has the rest


@call("ledger checkpoints")
def _(ctx):
    assert [c["step"] for c in ctx.json("ledger", "checkpoints")] == [20, 10]
    assert [c["step"] for c in ctx.json("ledger", "checkpoints", "--limit", "1")] == [20]


@call("ledger get")
def _(ctx):
    got = ctx.json("ledger", "get", "10")
    assert got["step"] == 10 and Path(got["path"]).name.startswith("checkpoint-10-")
    assert "no checkpoint at 99" in ctx.run("ledger", "get", "99", code=2).output


@call("ledger best")
def _(ctx):
    best = ctx.realm.sql("SELECT step FROM checkpoint_ledger ORDER BY loss LIMIT 1")[0]["step"]
    assert ctx.json("ledger", "best")["step"] == best
    assert "unknown metric" in ctx.run("ledger", "best", "--metric", "vibes", code=2).output


@call("ledger summary")
def _(ctx):
    s = ctx.json("ledger", "summary")
    assert s["count"] == 2 and s["latest_step"] == 20


# -- the vault ------------------------------------------------------------------------

@call("vault scan")
def _(ctx):
    assert ctx.json("vault", "scan")["found"]["checkpoint"] == 2


@call("vault locate")
def _(ctx):
    loc = ctx.json("vault", "locate", "checkpoint_20")
    assert loc["found"] and loc["best_location"]["zone"] == "local"
    assert not ctx.json("vault", "locate", "checkpoint_999")["found"]


@call("vault fetch")
def _(ctx):
    path = Path(ctx.run("vault", "fetch", "checkpoint_20").stdout.strip())
    assert (path / "config.json").is_file() and path.name.startswith("checkpoint-20-")


@call("vault add-zone")
def _(ctx):
    (ctx.tmp / "nas").mkdir(exist_ok=True)
    # Unconfirmed (the prompt answered with an empty line): not added.
    res = CliRunner().invoke(app, ["--home", str(ctx.paths.home), "vault", "add-zone", "nas-cli",
                                   f"file://{ctx.tmp / 'nas'}"], input="\n", prog_name="realm")
    assert res.exit_code == 1 and "Add zone 'nas-cli'" in res.output, res.output
    assert "nas-cli" not in [z["zone_id"] for z in ctx.realm.vault.zones()]
    ctx.run("vault", "add-zone", "nas-cli", f"file://{ctx.tmp / 'nas'}", "--yes")
    assert "nas-cli" in [z["zone_id"] for z in ctx.realm.vault.zones()]
    ctx.run("vault", "add-zone", "bad", "relative/path", "--yes", code=2)
    ctx.run("vault", "add-zone", "top", "/", "--yes", code=2)


@call("vault zones")
def _(ctx):
    (ctx.tmp / "zones").mkdir(exist_ok=True)
    ctx.realm.vault.add_zone("zones-cli", str(ctx.tmp / "zones"), confirmed=True)
    zones = {z["zone_id"]: z["url"] for z in ctx.json("vault", "zones")}
    assert list(zones)[0] == "local" and zones["zones-cli"] == str(ctx.tmp / "zones")


@call("vault transfer")
def _(ctx):
    far = ctx.tmp / "far"
    far.mkdir(exist_ok=True)
    ctx.run("vault", "add-zone", "far-cli", str(far), "--yes")
    loc = ctx.json("vault", "transfer", "checkpoint_10", "far-cli")
    assert loc["zone"] == "far-cli" and (far / loc["path"] / "config.json").is_file()


@call("vault search")
def _(ctx):
    found = ctx.json("vault", "search", "--type", "checkpoint")
    assert {"checkpoint_10", "checkpoint_20"} <= {a["asset_id"] for a in found}


@call("vault stats")
def _(ctx):
    n = ctx.realm.ledger.scalar("SELECT count(*) FROM checkpoint_ledger")
    assert n >= 2 and ctx.json("vault", "stats")["checkpoints_in_ledger"] == n


@call("vault retention")
def _(ctx):
    plan = ctx.json("vault", "retention")
    assert plan["dry_run"] and all((ctx.paths.checkpoints / Path(c["path"]).name).exists()
                                   for c in plan["delete"])


@call("vault delete")
def _(ctx):
    # A checkpoint of its own (a copy of step 10 as step 5), so the others stay for the
    # rest of the table.
    import shutil
    src = ctx.realm.checkpoints.get(10)
    path = ctx.paths.checkpoints / "checkpoint-5-20260101-1200"
    shutil.copytree(src.path, path)
    ctx.realm.ledger.append("checkpoints", [{"step": 5, "name": path.name, "path": str(path), "loss": 9.0}])
    out = ctx.json("vault", "delete", "5")
    assert out["step"] == 5 and out["freed_bytes"] > 0 and not path.exists()
    assert ctx.realm.checkpoints.get(10) is not None and Path(src.path).is_dir()
    assert "checkpoint" in ctx.run("vault", "delete", "5", code=2).output


@call("vault export")
def _(ctx):
    # DEST is a name under <realm home>/exports; a path leaving it is refused.
    ctx.run("vault", "export", "20", str(ctx.tmp / "exported"), code=2)
    ctx.run("vault", "export", "20", "../escape", code=2)
    assert not (ctx.tmp / "exported").exists() and not (ctx.paths.home / "escape").exists()
    ctx.run("vault", "export", "20", "exported")
    dest = ctx.paths.exports / "exported"
    # The export is a model transformers loads, with the checkpoint's very weights.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(dest)
    tok = AutoTokenizer.from_pretrained(dest)
    assert tok.chat_template and model.config.vocab_size == len(tok)
    original = AutoModelForCausalLM.from_pretrained(ctx.realm.checkpoints.get(20).path)
    ids = torch.tensor([tok.apply_chat_template([{"role": "user", "content": "①+①?"}],
                                                add_generation_prompt=True)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, original(ids).logits)
    assert not list(dest.glob("optimizer*")) and not (dest / "trainer_state.json").exists()


# -- the Task Master, the curriculum, the champion, hosts, the Tavern ----------------

@call("tasks list")
def _(ctx):
    tasks = ctx.json("tasks", "list", "--json")
    assert tasks[0]["task_id"] == "process_eval_queue"
    text = ctx.run("tasks", "list").stdout
    assert all(t["task_id"] in text for t in tasks)


@call("cluster status")
def _(ctx):
    # No [cluster] section: one machine, said so, and no Ray joined (the real cluster's
    # nodes are tests/services/test_cluster.py's).
    out = ctx.json("cluster", "status", "--json")
    assert out["engine"] == "local" and "nodes" not in out
    assert "one machine" in ctx.run("cluster", "status").stdout


@call("tasks available")
def _(ctx):
    lines = ctx.run("tasks", "available").stdout.splitlines()
    said = {lines[i].split()[2]: lines[i + 1].strip() for i in range(0, len(lines), 2)}
    tasks = ctx.realm.tasks.list(check_work=True)
    assert set(said) == {t["task_id"] for t in tasks}
    for t in tasks:  # READY with its work exactly when the task may run, else why not
        assert said[t["task_id"]] == ("READY: " + t.get("work", "") if t["available"] else t["why_not"])
    # SY is on by default; its sparring waits until SY gets half of its level right.
    assert said["sparring_sy"].startswith("sy L1 not yet at 50%"), said["sparring_sy"]


@call("tasks status")
def _(ctx):
    out = ctx.json("tasks", "status")
    assert out["eval_queue"] == len(ctx.realm.checkpoints.eval_queue())
    assert out["curriculum"][0]["skill"] == "bin"


@call("tasks run")
def _(ctx):
    assert ctx.json("tasks", "run", "vault_scan", "--queue") == {"task_id": "vault_scan", "requested": True}
    assert (ctx.paths.tasks / "requests" / "vault_scan.json").is_file()
    assert "unknown task" in ctx.run("tasks", "run", "nope", "--queue", code=2).output


@call("tasks set")
def _(ctx):
    out = ctx.json("tasks", "set", "vault_scan", "--priority", "7", "--cooldown-s", "5", "--disabled")
    assert out["priority"] == 7 and not out["enabled"]
    listed = next(t for t in ctx.realm.tasks.list() if t["task_id"] == "vault_scan")
    assert listed["priority"] == 7 and listed["cooldown_s"] == 5 and not listed["enabled"]
    ctx.run("tasks", "set", "vault_scan", "--enabled")


@call("tasks once")
def _(ctx):
    home = ctx.fresh_home("once-home")
    realm = Realm(home.home)
    for t in realm.tasks.list():
        realm.tasks.set(t["task_id"], enabled=False)
    res = ctx.run("tasks", "once", home=home.home)
    assert json.loads(res.stdout) == {"ran": None, "detail": "no task is available"}


@call("tasks daemon")
def _(ctx):
    home = ctx.fresh_home("tm-home")
    service(ctx, ["tasks", "daemon"],
            lambda pid: read_status(home, "taskmaster.json").get("pid") == pid, "taskmaster", home)


@call("curriculum")
def _(ctx):
    cur = ctx.json("curriculum")
    assert cur == ctx.realm.skills.curriculum() and cur[0]["skill"] == "bin"


@call("champion")
def _(ctx):
    ctx.run("champion", "20")
    assert ctx.json("champion")["step"] == 20
    assert ctx.realm.sql("SELECT * FROM events WHERE key = 'champion'")
    ctx.run("champion", "999", code=2)


@call("hosts")
def _(ctx):
    out = ctx.json("hosts")  # no hosts.toml: one machine, every role
    assert out["source"] is None and out["trainer_local"] and list(out["hosts"]) == ["local"]
    hosts = ctx.paths.home / "hosts.toml"
    hosts.write_text('[hosts.trainer]\nhost = "10.0.0.9"\nroles = ["trainer"]\n'
                     '[hosts.trainer.services]\nrealm = { port = 8888 }\n')
    try:
        out = ctx.json("hosts")
        assert out["source"] == str(hosts) and not out["trainer_local"]
        assert out["hosts"]["trainer"]["host"] == "10.0.0.9"
        hosts.write_text('[hosts.trainer]\nport = "x"\n')
        assert "hosts.toml" in ctx.run("hosts", code=2).output
    finally:
        hosts.unlink()


@call("tavern")
def _(ctx):
    # Exposed without a login is refused before anything starts (serving is checked in
    # tests/reliability/test_api_security.py).
    assert "without a login" in ctx.run("tavern", "--address", "0.0.0.0", code=2).stderr


# -- skill tooling (issue 16) -------------------------------------------------------

def _bin_eval(ctx, step: int = 20, wrong_every: int = 2) -> None:
    """A recorded BIN L1 eval with some wrong answers (weak primitives to target)."""
    import realm_skills as skills
    from realm_skills.evaluation import eval_problems
    problems = eval_problems("bin", 1)
    answers = [p.answer if i % wrong_every else "nope" for i, p in enumerate(problems)]
    ctx.realm.skills.record_eval(skills.run_eval("bin", 1, answers, problems=problems), step,
                          f"checkpoint-{step}")


@call("skills spar")
def _(ctx):
    out = ctx.json("skills", "spar", "--skill", "bin", "--count", "6", "--step", "20", "--seed", "3")
    assert out["step"] == 20 and out["count"] == 6 and out["correct"] + out["wrong"] == 6
    if out["wrong"]:
        assert (ctx.paths.queue("high") / out["quest"]).is_file() and out["examples"] == 3 * out["wrong"]
        (ctx.paths.queue("high") / out["quest"]).unlink()


@call("skills target")
def _(ctx):
    _bin_eval(ctx)
    out = ctx.json("skills", "target", "--skill", "bin", "--threshold", "0.9", "--count", "12",
                   "--level", "1", "--seed", "4")
    path = Path(out["path"])
    assert path.parent == ctx.paths.queue("high") and path.name.startswith("target-bin-L1")
    assert len(path.read_text().splitlines()) == 12
    path.unlink()


@call("skills check-sparring")
def _(ctx):
    bad = ctx.paths.queue("high") / "sparring-cli-bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "1+1?"},
                                            {"role": "assistant", "content": "2"}]}) + "\n")
    try:
        res = ctx.run("skills", "check-sparring", code=1)
        out = json.loads(res.stdout)
        assert out["bad"] >= 1 and any(r["ok"] is False for r in out["checked"])
    finally:
        bad.unlink()


@call("skills passives")
def _(ctx):
    out = ctx.json("skills", "passives")
    assert len(out) == 11, out


@call("skills primitives")
def _(ctx):
    _bin_eval(ctx)
    out = ctx.run("skills", "primitives", "bin", "--summary").stdout
    assert "bin_add_no_carry" in out


@call("skills probe")
def _(ctx):
    before = ctx.realm.sql("SELECT count(*) AS n FROM passive_probes")[0]["n"]
    ctx.run("skills", "probe", "--step", "20")
    assert ctx.realm.sql("SELECT count(*) AS n FROM passive_probes")[0]["n"] > before


# -- formats (issue 17) ------------------------------------------------------------------

@call("quest import")
def _(ctx):
    from datasets import Dataset
    folder = ctx.tmp / "alpaca-ds"
    Dataset.from_list([{"instruction": "Add 2 and 3.", "input": "", "output": "5"},
                       {"instruction": "Reverse", "input": "abc", "output": "cba"}]).save_to_disk(folder)
    out = ctx.json("quest", "import", str(folder), "--name", "alpaca-cli.jsonl")
    path = ctx.paths.inbox / "alpaca-cli.jsonl"
    assert out["examples"] == 2 and path.is_file()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[1]["messages"][-1] == {"role": "assistant", "content": "cba"}
    path.unlink()


# -- days unattended (issue 18) ----------------------------------------------------------

@call("up")
def _(ctx):
    home = ctx.fresh_home("up-home")
    ctx.run("up", "--headless", home=home.home)
    try:
        wait_for(lambda: any(p["name"] == "daemon" for p in
                             json.loads(ctx.run("ps", home=home.home).stdout)["processes"]), 120,
                 "realm up's daemon in realm ps")
    finally:
        out = json.loads(ctx.run("down", home=home.home).stdout)
    assert out["still_running"] == [] and out["stopped"]


@call("ps")
def _(ctx):
    out = ctx.json("ps")
    assert out["home"] == str(ctx.paths.home) and out["running"] is False and out["processes"] == []


@call("down")
def _(ctx):
    home = ctx.fresh_home("down-home")
    service_pid = subprocess.Popen([sys.executable, "-m", "realm_kernel.services.daemon", "--home",
                                    str(home.home)], env=child_env(home.home),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        wait_for(lambda: read_status(home, DAEMON).get("pid") == service_pid.pid, 120, "a lone daemon")
        out = json.loads(ctx.run("down", home=home.home).stdout)
        assert [p["name"] for p in out["stopped"]] == ["daemon"] and out["still_running"] == []
        assert service_pid.wait(30) == 0
    finally:
        if service_pid.poll() is None:
            service_pid.kill()
            service_pid.wait()


@call("backup")
def _(ctx):
    dest = ctx.tmp / "bk-cli"
    ctx.run("backup", str(dest))
    assert (dest / "ledger").is_dir() and any((dest / "ledger").rglob("*.parquet"))


@call("restore")
def _(ctx):
    src = ctx.tmp / "bk-for-restore"
    ctx.run("backup", str(src))
    home = ctx.fresh_home("restored")
    ctx.run("restore", str(src), home=home.home)
    steps = Realm(home.home).sql("SELECT max(step) AS s FROM metrics")[0]["s"]
    assert steps == ctx.realm.sql("SELECT max(step) AS s FROM metrics")[0]["s"] == 20


# -- the tests ------------------------------------------------------------------------

def test_every_command_has_an_entry():
    commands = registered()
    missing = [c for c in commands if c not in CALLS]
    assert not missing, (f"`realm {missing[0]}` has no entry in CALLS (tests/cli/test_cli.py): add a "
                         f"@call({missing[0]!r}) function with one real call; missing: {missing}")
    stale = sorted(set(CALLS) - set(commands))
    assert not stale, f"CALLS names commands the app no longer has: {stale}"


@pytest.fixture(scope="module")
def cli_ctx(tmp_path_factory, dio_mini_dir) -> Ctx:
    tmp = tmp_path_factory.mktemp("cli")
    paths = make_home(tmp / "realm", dio_mini_dir)
    cfg = load_config(paths.home).training.model_copy(update={"max_steps": 20, "eval_fraction": 0.0})
    job = Job(quest_id="cli.jsonl", examples=mixed_examples(200, seed=8), model_path=paths.dio_mini,
              run_id="cli", training=cfg, skill="bin", skill_level=1)
    result = TrainerEngine(paths, Ledger(paths, "test")).run_job(job)
    assert result.success, result.error_message
    return Ctx(paths, tmp, dio_mini_dir)


@pytest.mark.parametrize("command", registered())
def test_command(command, cli_ctx, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(cli_ctx.paths.home))  # the --home callback sets it
    words = command.split()
    res = CliRunner().invoke(app, [*words, "--help"], prog_name="realm")
    assert res.exit_code == 0 and f"Usage: realm {command}" in res.output, res.output
    if command not in CALLS:
        pytest.fail(f"`realm {command}` has no entry in CALLS (tests/cli/test_cli.py)")
    started = time.monotonic()
    CALLS[command](cli_ctx)
    print(f"realm {command}: {time.monotonic() - started:.1f} s")
