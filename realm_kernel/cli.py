"""`realm`: the command line. Every command goes through realm_kernel.api.Realm."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from .hero_model import hub
from .store.paths import RealmPaths

app = typer.Typer(help="Realm of Training: fine-tune DIO like the hero of an idle RPG.",
                  no_args_is_help=True, add_completion=False)

quest_app = typer.Typer(help="Quests: training files in the inbox.", no_args_is_help=True)
ledger_app = typer.Typer(help="The DuckDB ledger.", no_args_is_help=True)
vault_app = typer.Typer(help="The VaultKeeper: assets across zones.", no_args_is_help=True)
app.add_typer(quest_app, name="quest")
app.add_typer(ledger_app, name="ledger")
skills_app = typer.Typer(help="Skills: BIN, SY, their levels, primitives and evals.", no_args_is_help=True)
app.add_typer(skills_app, name="skills")
app.add_typer(vault_app, name="vault")
oracle_app = typer.Typer(help="The Oracle: chat with a checkpoint by exact step.", no_args_is_help=True)
app.add_typer(oracle_app, name="oracle")
hero_app = typer.Typer(help="The hero: its profile (training defaults sized for it).", no_args_is_help=True)
app.add_typer(hero_app, name="hero")


def _realm():
    from .api import Realm
    return Realm()


def _print(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def working(what: str) -> Iterator[None]:
    """Say what the CLI is doing (on stderr, so stdout stays data), a spinner while it
    runs on a terminal, and how long it took."""
    import time

    from rich.console import Console
    typer.echo(f"{what}...", err=True)
    t0 = time.monotonic()
    with Console(stderr=True).status(what):
        yield
    typer.echo(f"{what}: done in {time.monotonic() - t0:.1f} s", err=True)


def _guarded(fn, *args, **kwargs):
    """Run a Realm call; a known user error exits 2 with its message, not a traceback."""
    import duckdb

    from .quests.formats import QuestError
    from .store.config import ConfigError
    from .store.vault import VaultError
    try:
        return fn(*args, **kwargs)
    except (QuestError, VaultError, LookupError, ValueError, ConfigError, OSError,
            duckdb.Error) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


@app.callback()
def _home(home: Path = typer.Option(None, "--home", envvar="REALM_HOME",
                                    help="Realm home (default: the checkout, else ~/.realm).")):
    if home:
        os.environ["REALM_HOME"] = str(home.expanduser().resolve())


@app.command("build-dio-mini")
def build_dio_mini_cmd(force: bool = False, seed: int = 0) -> None:
    """Build the CPU demo hero into <home>/models/dio-mini."""
    from .train.dio_mini import build_dio_mini
    paths = RealmPaths.at().ensure()
    with working(f"Building dio-mini into {paths.dio_mini}"):
        built = build_dio_mini(paths.dio_mini, seed=seed, force=force)
    typer.echo(f"dio-mini at {built}")


@app.command()
def daemon() -> None:
    """Run the training daemon in the foreground."""
    from .services.daemon import main
    raise typer.Exit(main(["--home", str(RealmPaths.at().home)]))


@app.command()
def status() -> None:
    """Hero stats and the battle status."""
    r = _realm()
    _print({"hero": r.hero(), "training": r.training_status(), "health": r.health()})


@app.command()
def pause() -> None:
    """Pause the battle at the next step boundary."""
    _print(_realm().control("pause"))


@app.command()
def resume() -> None:
    """Resume after pause or stop."""
    _print(_realm().control("resume"))


@app.command()
def stop() -> None:
    """Save a checkpoint and stop at the next step boundary; the quest goes back to its queue."""
    _print(_realm().control("stop"))


@app.command()
def skip() -> None:
    """Save a checkpoint and set the quest in training aside (failed/, reason 'skipped')."""
    _print(_realm().control("skip"))


@quest_app.command("add")
def quest_add(file: Path, priority: str = typer.Option(None, "--priority",
                                                       help="high | normal | low")) -> None:
    """Validate FILE and drop it into the inbox."""
    from .quests.formats import QuestError
    try:
        _print(_realm().add_quest(file, priority=priority))
    except (QuestError, ValueError, OSError) as e:
        typer.echo(f"rejected: {e}", err=True)
        raise typer.Exit(2) from e


@quest_app.command("import")
def quest_import(source: str = typer.Argument(..., help="a datasets save_to_disk folder, or a hub "
                                              "dataset id in the local HF cache"),
                 split: str = typer.Option(None, help="the split (default: train, or the only one)"),
                 name: str = typer.Option(None, help="the quest's file name (.jsonl)"),
                 priority: str = typer.Option(None, "--priority", help="high | normal | low")) -> None:
    """Convert a HF dataset (messages, prompt/completion, ShareGPT or Alpaca rows) into a quest."""
    from .quests.formats import QuestError
    typer.echo(f"Reading {source}{f' ({split})' if split else ''}...", err=True)
    try:
        _print(_realm().import_dataset(source, split, name, priority))
    except (QuestError, ValueError, OSError) as e:
        typer.echo(f"rejected: {e}", err=True)
        raise typer.Exit(2) from e


@quest_app.command("validate")
def quest_validate(file: Path,
                   depth: str = typer.Option(None, "--depth",
                                             help="quick | standard | deep (default: realm.toml)"),
                   level: str = typer.Option(None, "--level", hidden=True),  # the old name of --depth
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Check FILE without queueing it: the report the daemon would give."""
    report = _guarded(_realm().validate_quest, file, depth or level)
    typer.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.render())
    raise typer.Exit(0 if report.ok else 2)


@quest_app.command("priority")
def quest_priority(name: str, priority: str) -> None:
    """Move a waiting quest to another priority (high | normal | low)."""
    _print(_guarded(_realm().set_quest_priority, name, priority))


@quest_app.command("move")
def quest_move(name: str, position: int) -> None:
    """Reorder a waiting quest within its priority (0 = next)."""
    _print(_guarded(_realm().reorder_quest, name, position))


@quest_app.command("remove")
def quest_remove(name: str) -> None:
    """Delete a waiting, failed or completed quest."""
    _print(_guarded(_realm().delete_quest, name))


@quest_app.command("generate")
def quest_generate(skill: str, level: int = typer.Option(1, "--level"),
                   count: int = typer.Option(500, "--count"),
                   seed: int = typer.Option(None, "--seed")) -> None:
    """Generate a skill quest (e.g. `realm quest generate bin --level 1 --count 500`)."""
    from realm_skills import SkillError
    try:
        with working(f"Generating {count} {skill.upper()} level {level} problems"):
            path = _realm().generate_quest(skill, level, count, seed)
        typer.echo(path)
    except SkillError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e


@quest_app.command("list")
def quest_list() -> None:
    """The queue by state and priority."""
    _print(_realm().queue())


def _skill_errors():
    """Turn a skill error into a clear message and exit code 2."""
    from contextlib import contextmanager

    from realm_skills import SkillError

    @contextmanager
    def guard():
        try:
            yield
        except SkillError as e:
            typer.echo(str(e), err=True)
            raise typer.Exit(2) from e
    return guard()


@skills_app.command("list")
def skills_list() -> None:
    """Every skill with its levels, primitives and passive."""
    import realm_skills as skills
    with _skill_errors():
        _print([{"id": d.id, "name": d.name, "icon": d.icon, "levels": d.max_level,
                 "primitives": [p.id for p in d.primitives], "passive": d.passive}
                for d in map(skills.skill_def, skills.skill_ids())])


@skills_app.command("show")
def skills_show(skill: str, level: int = typer.Option(None, "--level", help="Only this level.")) -> None:
    """A skill's definition (or one level's parameters and a sample problem)."""
    import realm_skills as skills
    with _skill_errors():
        d = skills.skill_def(skill)
        if level is None:
            _print(d.model_dump(mode="json"))
            return
        p = skills.generate(skill, level, 1, seed=0)[0]
        _print({"skill": skill, "level": level,
                "parameters": skills.level_def(skill, level).model_dump(mode="json"),
                "sample": {"primitive_id": p.primitive_id, "question": p.question, "answer": p.answer}})


@skills_app.command("catalog")
def skills_catalog() -> None:
    """The 11 passives and their primitives, grouped by track."""
    from realm_skills.catalog import catalog
    with _skill_errors():
        _print({track: [{"id": p.id, "name": p.name, "passive": p.passive, "skill": p.skill}
                        for p in prims] for track, prims in catalog().by_track().items()})


@skills_app.command("generate")
def skills_generate(skill: str, level: int = typer.Option(1, "--level"),
                    count: int = typer.Option(5, "--count"), seed: int = typer.Option(0, "--seed"),
                    out: Path = typer.Option(None, "--out", help="Write a chat .jsonl here "
                                             "instead of printing problems.")) -> None:
    """Generate problems (printed as JSON lines, or a quest file with --out)."""
    import realm_skills as skills

    from .quests.formats import write_quest
    with _skill_errors():
        problems = skills.generate(skill, level, count, seed)
    if out:
        typer.echo(write_quest(out, [p.as_example() for p in problems]))
        return
    for p in problems:
        typer.echo(json.dumps(p.as_dict(), ensure_ascii=False, default=str))


@skills_app.command("eval")
def skills_eval(skill: str, answers: Path, level: int = typer.Option(..., "--level"),
                step: int = typer.Option(None, "--step"),
                checkpoint: str = typer.Option(None, "--checkpoint"),
                spar: bool = typer.Option(False, "--spar", help="Queue sparring from wrong answers."),
                ) -> None:
    """Score ANSWERS (a .jsonl of {"answer": ...} in eval order) against the level's
    eval batch, store it in the ledger and optionally queue sparring."""
    from .evals import grading
    rows = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [str(r.get("answer", "")) for r in rows]
    with _skill_errors():
        # The one grading path, with the file as the model's answers.
        result = grading.grade(grading.pick(skill, level, len(texts), eval_batch=True),
                               lambda questions, golden: texts)
        realm = _realm()
        run_id = realm.record_eval(result, step, checkpoint)
        out = {"run_id": run_id, **result.summary()}
        if spar and result.wrong:
            out["sparring"] = str(realm.spar(result))
    _print(out)


@skills_app.command("eval-report")
def skills_eval_report(skill: str, threshold: float = typer.Option(0.8, "--threshold")) -> None:
    """Skill level and level-up progress, latest evals, weak primitives (from the ledger)."""
    with _skill_errors():
        _print(_realm().eval_report(skill, threshold))


def _skill_tool(fn, *args, **kwargs) -> None:
    """Run a skill-tooling call: skill errors exit 2, a missing checkpoint exits 1."""
    with _skill_errors():
        try:
            _print(fn(*args, **kwargs))
        except FileNotFoundError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e


@skills_app.command("spar")
def skills_spar(skill: str = typer.Option(..., "--skill", help="Skill id (bin, sy, ...)."),
                count: int = typer.Option(40, "--count", min=1, help="Fresh problems to ask."),
                step: int = typer.Option(None, "--step", help="Checkpoint step (default: the newest)."),
                seed: int = typer.Option(None, "--seed")) -> None:
    """Spar a checkpoint: COUNT fresh problems at the skill's level; each wrong answer
    becomes 3 examples in queue/high (`realm skills spar --skill bin --count 40 --step 100`)."""
    _skill_tool(_realm().spar_checkpoint, skill, count, step, seed)


@skills_app.command("target")
def skills_target(skill: str = typer.Option(..., "--skill", help="Skill id."),
                  threshold: float = typer.Option(0.8, "--threshold", min=0.0, max=1.0,
                                                  help="Primitives under this accuracy are weak."),
                  count: int = typer.Option(200, "--count", min=1, help="Problems in the quest."),
                  level: int = typer.Option(None, "--level", help="Default: the skill's level."),
                  seed: int = typer.Option(None, "--seed")) -> None:
    """Targeted practice: a quest weighted to the primitives under THRESHOLD in the
    level's latest eval, into queue/high (`realm skills target --skill bin --threshold 0.8 --count 200`)."""
    with _skill_errors():
        path = _realm().targeted_quest(skill, level, count, threshold, seed)
    _print({"skill": skill, "quest": path.name, "path": str(path), "count": count, "threshold": threshold})


@skills_app.command("check-sparring")
def skills_check_sparring() -> None:
    """Check every queued sparring file (queue/*/sparring*.jsonl) as a quest and by the
    sparring rules; exit 1 if any fails (`realm skills check-sparring`)."""
    rows = _realm().check_sparring()
    _print({"files": len(rows), "bad": sum(not r["ok"] for r in rows), "checked": rows})
    if any(not r["ok"] for r in rows):
        raise typer.Exit(1)


@skills_app.command("passives")
def skills_passives(history: bool = typer.Option(False, "--history", help="The forgetting watch's "
                                                  "accuracy over steps instead of the catalogue."),
                    passive: str = typer.Option(None, "--passive", help="Only this passive.")) -> None:
    """The 11 passives with primitives and knobs, or with --history the passive probes
    over steps, drop flags and probe cost (`realm skills passives --history`)."""
    realm = _realm()
    with _skill_errors():
        _print(realm.passive_history(passive) if history else
               [p for p in realm.passives() if passive in (None, p["id"])])


@skills_app.command("probe")
def skills_probe(step: int = typer.Option(None, "--step", help="Checkpoint step (default: the newest).")
                 ) -> None:
    """Run the forgetting watch's fixed passive probe set on a checkpoint now and record
    it (`realm skills probe --step 100`)."""
    _skill_tool(_realm().probe_passives, step)


@skills_app.command("primitives")
def skills_primitives(skill: str, summary: bool = typer.Option(False, "--summary", help="Add "
                                                                "accuracy from the ledger.")) -> None:
    """A skill's primitives and the levels using each; --summary adds latest/best
    accuracy per primitive (`realm skills primitives bin --summary`)."""
    realm = _realm()
    _skill_tool(realm.primitive_summary if summary else realm.skill_primitives, skill)


@oracle_app.command("chat")
def oracle_chat(step: int = typer.Option(..., "--step", help="Exact step (0 = the base model)."),
                message: str = typer.Option(None, "--message", "-m", help="One message; else read lines."),
                host: str = typer.Option(None, "--host", help="An inference host of hosts.toml."),
                max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
                temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy.")) -> None:
    """Chat with one checkpoint (loaded into this process, or served by --host); every
    answer ends with the name and path of the model that gave it."""
    from .oracle.pool import ModelNotLoaded, OracleError, RemoteError, UnknownCheckpoint
    oracle = _realm().oracle
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature}
    try:
        loaded = oracle.load(step, host)
    except (ModelNotLoaded, UnknownCheckpoint, OracleError, RemoteError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"🔮 {loaded['model']} ({loaded['model_path']}) on {loaded['host']}", err=True)
    history: list[dict] = []
    lines = [message] if message is not None else (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        done: dict = {}
        for ev in oracle.stream(step, messages=history, host=host, sampling=sampling):
            if ev["type"] == "token":
                typer.echo(ev["text"], nl=False)
            elif ev["type"] == "done":
                done = ev
        typer.echo("")
        typer.echo(f"[model: {done['model']} | path: {done['model_path']} | "
                   f"{done['usage']['completion_tokens'] if done.get('usage') else '?'} tokens]", err=True)
        history.append({"role": "assistant", "content": done["content"]})


@oracle_app.command("status")
def oracle_status() -> None:
    """What the realm's Oracle pool really holds (its owner's, or none), and what the
    inference hosts of hosts.toml serve."""
    _print(_realm().oracle.status())


@oracle_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def oracle_serve(ctx: typer.Context, port: int = 8890) -> None:
    """Own the realm's Oracle pool without JupyterLab: a bare Jupyter server with the realm
    API on 127.0.0.1 (no daemon, no Task Master), so the Panel app, notebooks and the CLI
    share its models. JupyterLab under `realm play` does this itself.

    Example: realm oracle serve --port 8890"""
    from .services.launcher import new_token, token_from
    paths = RealmPaths.at().ensure()
    args = [sys.executable, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
            f"--ServerApp.root_dir={paths.home}", *ctx.args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    if token_from(ctx.args) is None:
        args.append(f"--IdentityProvider.token={new_token()}")
    env = {**jupyter_env(), "REALM_WEAVER": "0"}
    typer.echo(f"Realm home: {paths.home}\nServing the realm's Oracle pool on 127.0.0.1:{port} "
               f"(advertised in {paths.oracle_owner}; Ctrl-C to stop)...")
    os.execvpe(args[0], args, env)


@oracle_app.command("checkpoints")
def oracle_checkpoints() -> None:
    """Every step the Oracle can load: 0 (the base model) and the ledger's checkpoints."""
    _print(_realm().oracle.checkpoints())


@ledger_app.command("sql")
def ledger_sql(query: str) -> None:
    """Run SQL over the ledger views (metrics, checkpoints, quests, events, evals, ...)."""
    import duckdb
    try:
        _print(_realm().sql(query))
    except duckdb.Error as e:
        typer.echo(f"SQL error: {e}", err=True)
        raise typer.Exit(2) from e


@app.command()
def vram(model: str = typer.Argument("qwen3-0.6b", help="A preset (qwen3-0.6b, qwen3-4b, ...) "
                                     "or a local HF model directory."),
         seq_len: int = typer.Option(2048, "--seq-len"), batch_size: int = typer.Option(1, "--batch-size"),
         dtype: str = "bfloat16", optimizer: str = "adamw",
         checkpointing: bool = typer.Option(False, "--checkpointing"),
         liger: bool = typer.Option(False, "--liger"), as_json: bool = typer.Option(False, "--json"),
         method: str = typer.Option("full", help="full | lora | qlora"),
         lora_rank: int = typer.Option(16, "--lora-rank")) -> None:
    """Estimate the GPU memory of fine-tuning, full or LoRA/QLoRA (weights, grads, optimizer,
    activations, logits)."""
    from .hero_model.vram import estimate, estimate_from_path
    from .train.presets import PRESETS
    kwargs = dict(seq_len=seq_len, batch_size=batch_size, dtype=dtype, optimizer=optimizer,
                  gradient_checkpointing=checkpointing, liger=liger, method=method, lora_rank=lora_rank)
    try:
        est = estimate(PRESETS[model], **kwargs) if model in PRESETS else estimate_from_path(model, **kwargs)
    except (ValueError, FileNotFoundError, KeyError) as e:
        typer.echo(f"vram: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(est.as_dict(), indent=2) if as_json else est.table())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context, quest: Path,
          model: Path = typer.Option(None, help="Local HF model dir or hub id (default: the hero's "
                                     "base model)."),
          from_config: str = typer.Option(None, "--from-config",
                                          help="Random init from a preset: dio-mini, qwen3-0.6b, ..."),
          max_steps: int = typer.Option(None, "--max-steps"),
          optimizer: str = typer.Option(None, help="adamw | muon | paged_adamw_8bit"),
          packing: bool = typer.Option(None, "--packing/--no-packing"),
          accelerate_config: Path = typer.Option(None, "--accelerate-config",
                                                 help="Run under `accelerate launch` with this config "
                                                      "(multi-GPU, FSDP)."),
          nproc: int = typer.Option(0, "--nproc", help="Run N processes with torchrun (gloo on CPU, "
                                                       "NCCL on GPUs): plain DDP."),
          output_dir: Path = typer.Option(None, "--output-dir", help="The run's own realm home "
                                          "(checkpoints, ledger); default <home>/standalone/<run id>."),
          preset: str = typer.Option(None, "--preset", help="A training recipe: qwen3-4b-24gb (the "
                                     "seed's 4B full fine-tune on a 24 GB card)."),
          vram_gb: float = typer.Option(None, "--vram-gb", help="The card to check the VRAM estimate "
                                        "against (default: the CUDA device's memory)."),
          force: bool = typer.Option(False, "--force", help="Start even when the estimate exceeds "
                                     "the card.")) -> None:
    """Train on a quest file directly with TrainerEngine (no daemon), in a realm home of its
    own so DIO's checkpoints and stats are untouched; prints the TrainingResult.

    Example: realm train data.jsonl --preset qwen3-4b-24gb --model Qwen/Qwen3-4B"""
    if accelerate_config or nproc > 1:
        from .train.standalone import new_run_id
        os.environ.setdefault("REALM_RUN_ID", new_run_id())  # one run (and folder) for every rank
        # Every process re-runs this command without the launch option; HF Trainer does the rest.
        argv = _without_options(sys.argv[1:], ("--accelerate-config", "--nproc"))
        launcher = (["accelerate.commands.launch", "--config_file", str(accelerate_config)]
                    if accelerate_config else
                    ["torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
                     f"--master_port={_free_port()}"])
        cmd = [sys.executable, "-m", *launcher, "-m", "realm_kernel.cli", *argv]
        os.execvp(cmd[0], cmd)
    from .train.standalone import TrainRefused, train_quest
    try:
        result = train_quest(quest, model=model, from_config=from_config, max_steps=max_steps,
                             optimizer=optimizer, packing=packing, output_dir=output_dir, preset=preset,
                             vram_gb=vram_gb, force=force, say=lambda m: typer.echo(m, err=True))
    except (TrainRefused, FileNotFoundError, hub.HubModelMissing) as e:
        typer.echo(f"train: {e}", err=True)
        raise typer.Exit(2) from e
    if result is not None:
        _print(result.as_dict())
        raise typer.Exit(0 if result.success else 1)
@ledger_app.command("checkpoints")
def ledger_checkpoints(limit: int = typer.Option(20, "--limit"),
                       skill: str = typer.Option(None, "--skill")) -> None:
    """The checkpoint ledger, newest first."""
    _print([r.as_dict() for r in _realm().checkpoints.list(limit, skill)])


@ledger_app.command("get")
def ledger_get(step: str) -> None:
    """One checkpoint by step (or any checkpoint name)."""
    rec = _realm().checkpoints.get(step)
    if rec is None:
        typer.echo(f"no checkpoint at {step}", err=True)
        raise typer.Exit(2)
    _print(rec.as_dict())


@ledger_app.command("best")
def ledger_best(metric: str = typer.Option("loss", "--metric")) -> None:
    """The best checkpoint by loss | val_loss | accuracy."""
    rec = _guarded(_realm().checkpoints.best, metric)
    _print(rec.as_dict() if rec else None)


@ledger_app.command("summary")
def ledger_summary() -> None:
    _print(_realm().checkpoints.summary())


@vault_app.command("scan")
def vault_scan(zone: str = typer.Option("local", "--zone")) -> None:
    """Discover checkpoints, models, data and configs in a zone."""
    _print(_guarded(_realm().vault.scan, zone))


@vault_app.command("locate")
def vault_locate(asset_id: str) -> None:
    _print(_guarded(_realm().vault.locate, asset_id).as_dict())


@vault_app.command("fetch")
def vault_fetch(asset_id: str) -> None:
    """Copy an asset into the realm home from the best zone that has it."""
    typer.echo(_guarded(_realm().vault.fetch, asset_id))


@vault_app.command("transfer")
def vault_transfer(asset_id: str, to_zone: str,
                   from_zone: str = typer.Option(None, "--from")) -> None:
    _print(_guarded(_realm().vault.transfer, asset_id, to_zone, from_zone).as_dict())


@vault_app.command("search")
def vault_search(type_: str = typer.Option(None, "--type"), q: str = typer.Option(None, "--q")) -> None:
    _print(_guarded(_realm().vault.search, type_, q))


@vault_app.command("stats")
def vault_stats() -> None:
    _print(_realm().vault.stats())


@vault_app.command("zones")
def vault_zones() -> None:
    _print(_realm().vault.zones())


@vault_app.command("add-zone")
def vault_add_zone(zone_id: str, url: str, detail: str = "") -> None:
    """A local folder or an fsspec URL (file://, s3://, ssh://, ...)."""
    _print(_guarded(_realm().vault.add_zone, zone_id, url, detail))


@vault_app.command("retention")
def vault_retention(apply: bool = typer.Option(False, "--apply",
                                               help="delete; without it, a dry run")) -> None:
    """Keep best N + latest N + every Kth checkpoint, never the champion or the one in use."""
    _print(_realm().vault.retention(dry_run=not apply))


@vault_app.command("delete")
def vault_delete(step: int) -> None:
    """Delete one checkpoint from disk (never the champion or the one in use)."""
    _print(_guarded(_realm().delete_checkpoint, step))


@vault_app.command("export")
def vault_export(step: int, dest: Path = typer.Argument(
        None, help="a new folder (default: <realm home>/exports/<checkpoint name>)"),
        merge: bool = typer.Option(False, help="merge a LoRA adapter into its base (a full model)")) -> None:
    """Copy a checkpoint as a clean HF directory: weights, config, tokenizer only."""
    typer.echo(_guarded(_realm().export_checkpoint, step, dest, merge))


tasks_app = typer.Typer(help="The Task Master: pipeline notebooks run when idle.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


def _task_line(t: dict) -> str:
    state = "on " if t["enabled"] else "off"
    last = f"{t['last_status']} {t['last_run']}" if t["last_run"] else "never run"
    return (f"{t['priority']:>3}  {state} {t['task_id']:<22} {t['resource']:<9} "
            f"cooldown {t['cooldown_s']:>6.0f} s  {last}")


@tasks_app.command("list")
def tasks_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every task: priority, enabled, resource, cooldown, last run."""
    tasks = _realm().tasks()
    if as_json:
        _print(tasks)
    else:
        for t in tasks:
            typer.echo(_task_line(t))


@tasks_app.command("available")
def tasks_available() -> None:
    """Which tasks may run now, and why the others may not."""
    for t in _realm().tasks(check_work=True):
        why = "READY: " + t.get("work", "") if t["available"] else t["why_not"]
        typer.echo(f"{_task_line(t)}\n       {why}")


@tasks_app.command("status")
def tasks_status() -> None:
    """The Task Master process, the GPU as NVML sees it, and the eval queue."""
    r = _realm()
    _print({"taskmaster": r.taskmaster_status(), "eval_queue": len(r.eval_queue()),
            "curriculum": r.curriculum()})


@tasks_app.command("run")
def tasks_run(task_id: str, queue: bool = typer.Option(
        False, "--queue", help="hand it to the running Task Master instead of running it here")) -> None:
    """Run one task now (here, in the foreground), or --queue it for the Task Master."""
    r = _realm()
    if queue:
        _print(_guarded(r.run_task, task_id))
        return
    from .services.taskmaster import TaskMaster
    tm = TaskMaster(r.paths.home)
    tm.reload_config()
    result = _guarded(tm.run, task_id, "realm tasks run")
    _print(result)
    if result["status"] != "done":
        raise typer.Exit(1)


@tasks_app.command("once")
def tasks_once() -> None:
    """Run the highest-priority available task once (nothing when none is available)."""
    from .services.taskmaster import TaskMaster
    result = TaskMaster(RealmPaths.at().home).once()
    _print(result or {"ran": None, "detail": "no task is available"})


@tasks_app.command("daemon")
def tasks_daemon() -> None:
    """Run the Task Master loop in the foreground (the Weaver runs it beside the daemon)."""
    from .services.taskmaster import main
    raise typer.Exit(main(["--home", str(RealmPaths.at().home)]))


@tasks_app.command("set")
def tasks_set(task_id: str, enabled: bool = typer.Option(None, "--enabled/--disabled"),
              priority: int = typer.Option(None), cooldown_s: float = typer.Option(None),
              param: list[str] = typer.Option(None, "--param", help="A notebook parameter, "
                                              "NAME=VALUE (JSON value), e.g. --param count=80")) -> None:
    """Change a task's enabled flag, priority, cooldown or notebook parameters (kept in
    tasks/settings.json), e.g. `realm tasks set sparring_bin --param count=80`."""
    _print(_guarded(_realm().set_task, task_id, enabled=enabled, priority=priority,
                    cooldown_s=cooldown_s, parameters=_params(param) if param else None))


def _params(items: list[str]) -> dict:
    """NAME=VALUE pairs; a value is read as JSON (80, 0.9, true) or else kept as text."""
    out = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            typer.echo(f"error: --param {item!r}: expected NAME=VALUE", err=True)
            raise typer.Exit(2)
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


@app.command()
def curriculum() -> None:
    """Per skill: level, recent evals at it, review levels, priority."""
    _print(_realm().curriculum())


@app.command()
def champion(step: str = typer.Argument(None, help="promote this checkpoint step")) -> None:
    """Show the champion, or promote the checkpoint at STEP."""
    r = _realm()
    _print(_guarded(r.promote, step) if step is not None else r.champion())


@app.command()
def hosts() -> None:
    """The host registry (hosts.toml), and whether the trainer is this machine."""
    from .store.hosts import HostRegistry
    reg = _guarded(HostRegistry.load)
    _print({"source": str(reg.source) if reg.source else None,
            "trainer_local": reg.is_trainer_local(),
            "hosts": {k: h.model_dump() for k, h in reg.hosts.items()}})


def _plan_card(vram_gb: float | None) -> None:
    """--vram-gb: size GPU profiles for a card of that size, here and in what this starts."""
    if vram_gb is not None:
        os.environ["REALM_HERO__VRAM_GB"] = str(vram_gb)


@hero_app.command("profile")
def hero_profile(name: str = typer.Argument(None, help="Show this profile as it would resolve here "
                                            "(default: the realm's own)."),
                 vram_gb: float = typer.Option(None, "--vram-gb", help="Size for a card of this many "
                                               "GiB (default: CUDA device 0)."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """The hero profile in force: each training default, its value and where it came from
    (the profile's recipe or measurement, realm.toml, or the environment).

    Example: realm hero profile qwen3-0.6b --vram-gb 24"""
    from .store.config import load_config
    _plan_card(vram_gb)
    environ = dict(os.environ, **({"REALM_HERO__PROFILE": name} if name else {}))
    res = _guarded(load_config, None, environ).resolved_profile
    typer.echo(json.dumps(res.as_dict(), indent=2, default=str) if as_json else res.text())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def play(ctx: typer.Context, port: int = 8888, open_browser: bool = False,
         headless: bool = typer.Option(False, help="No JupyterLab: only the daemon and the "
                                       "Task Master, supervised by the Weaver, until Ctrl-C."),
         root_dir: Path = typer.Option(None, help="Folder JupyterLab serves (default: the "
                                       "realm's run/ folder with copies of the notebooks)."),
         detach: bool = typer.Option(False, "--detach", help="Start in the background, print "
                                     "where, and return (`realm ps`, `realm down`)."),
         hero: str = typer.Option(None, "--hero", help="The hero profile, kept in realm.toml "
                                  "([hero] profile): dio-mini (CPU) or qwen3-0.6b (bf16, batch "
                                  "sized to the card)."),
         vram_gb: float = typer.Option(None, "--vram-gb", help="Size a GPU profile for a card of "
                                       "this many GiB (default: CUDA device 0).")
         ) -> None:
    """Start the game: JupyterLab with the Tavern notebook, the daemon, the Task Master
    and dio-mini. From an empty realm the curriculum writes the first quests itself.

    Extra arguments go to JupyterLab (e.g. --IdentityProvider.token=...).
    Example: realm play --hero qwen3-0.6b --headless --detach"""
    _plan_card(vram_gb)
    if hero is not None:
        _choose_hero(hero)
    if detach:
        raise typer.Exit(_play_detached(port, headless, root_dir, list(ctx.args)))
    from .api import Realm
    from .services.launcher import new_token, record_play, token_from
    from .train.dio_mini import build_dio_mini

    realm = Realm()
    config = _guarded(lambda: realm.config)
    typer.echo(config.resolved_profile.text())
    base_model = config.hero.base_model
    if base_model and hub.is_hub_id(base_model, realm.paths.home):
        try:  # downloaded once, in the foreground, so huggingface_hub's progress bars are seen
            typer.echo(f"Hero: {base_model} at {hub.fetch(base_model)}")
        except hub.HubModelMissing as e:  # the daemon waits and says so in the Tavern
            typer.echo(f"warning: {e}", err=True)
    if not base_model:
        if (realm.paths.dio_mini / "config.json").exists():
            typer.echo(f"Hero: dio-mini at {realm.paths.dio_mini}")
        else:
            with working(f"Building the hero, dio-mini, into {realm.paths.dio_mini}"):
                build_dio_mini(realm.paths.dio_mini)
    realm.ledger.ensure_views()
    log = os.environ.get("REALM_PLAY_LOG")
    if headless:
        record_play(realm.paths, "headless", log=Path(log) if log else None)
        raise typer.Exit(_play_headless(realm))
    env = jupyter_env()
    args = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
            f"--ServerApp.root_dir={root_dir or run_folder(realm.paths)}",
            "--LabApp.default_url=/lab/tree/notebooks/Tavern.ipynb"]
    if not open_browser:
        args.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and CI run as root
    args += ctx.args
    token = token_from(ctx.args)
    if token is None:  # ours, so that `realm ps` can give the URL with its token
        token = new_token()
        args.append(f"--IdentityProvider.token={token}")
    info = record_play(realm.paths, "lab", port, token, Path(log) if log else None)
    typer.echo(f"Realm home: {realm.paths.home}\nStarting JupyterLab at {info['url']} "
               "(Ctrl-C to stop)...")
    os.execvpe(args[0], args, env)


def _choose_hero(name: str) -> None:
    """`--hero NAME` into realm.toml's [hero] profile (refused, by name, when unknown)."""
    from .hero_model import profiles
    from .store import settings
    try:
        profiles.check_name(name)
    except ValueError as e:
        typer.echo(f"error: --hero: {e}", err=True)
        raise typer.Exit(2) from e
    result = settings.save(RealmPaths.at().ensure(), {"hero.profile": name}, confirm=True)
    if not result["ok"]:
        typer.echo(f"error: realm.toml: {result.get('errors')}", err=True)
        raise typer.Exit(2)


def run_folder(paths: RealmPaths) -> Path:
    """<home>/run/: what JupyterLab serves, with fresh copies of the tracked notebooks, so
    running them (and JupyterLab's autosave) never dirties the checkout. A copy the user
    changed is kept until the tracked notebook itself changes."""
    import shutil

    from .store.paths import resource_dir
    run = paths.home / "run"
    (run / "notebooks").mkdir(parents=True, exist_ok=True)
    for nb in sorted(resource_dir("notebooks").glob("*.ipynb")):  # the checkout's or the wheel's
        dest = run / "notebooks" / nb.name
        if not dest.exists() or dest.stat().st_mtime < nb.stat().st_mtime:
            shutil.copy2(nb, dest)
            os.utime(dest)  # newer than the source: copied once per change of the source
    return run


def _play_detached(port: int, headless: bool, root_dir: Path | None, extra: list[str]) -> int:
    from .services.launcher import start_detached
    args = [f"--port={port}"] + (["--headless"] if headless else [])
    args += [f"--root-dir={root_dir}"] if root_dir else []
    paths = RealmPaths.at().ensure()
    try:
        info = _guarded(start_detached, paths, args + extra, headless)
    except RuntimeError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    typer.echo(f"The realm runs in the background (pid {info['pid']}, {info['mode']}).\n"
               f"Home: {paths.home}\n" + (f"Open: {info['url']}\n" if info.get("url") else "")
               + f"Log: {info['log']}\n`realm ps` shows it, `realm down` stops it.")
    return 0


@app.command()
def up(ctx: typer.Context, port: int = 8888,
       headless: bool = typer.Option(False, help="No JupyterLab: the daemon and the Task Master."),
       ) -> None:
    """Start the realm in the background (= realm play --detach) and print where.

    Example: realm up --headless"""
    raise typer.Exit(_play_detached(port, headless, None, []))


@app.command()
def ps() -> None:
    """What runs for this realm: pids, ports, URLs with their token, logs.

    Example: realm ps"""
    from .services.launcher import ps as list_processes
    _print(list_processes(RealmPaths.at()))


@app.command()
def down(timeout: float = typer.Option(None, help="seconds to wait (default: the daemon's "
                                       "stop_timeout_s + 60)")) -> None:
    """Stop this realm cleanly from any shell: the daemon at a step boundary with a
    checkpoint, then the Task Master, then JupyterLab.

    Example: realm down"""
    from .services.launcher import down as stop_realm
    result = stop_realm(RealmPaths.at(), timeout)
    _print(result)
    if result["still_running"]:
        raise typer.Exit(1)


@app.command()
def backup(dest: Path = typer.Argument(None, help="a new folder (default: <home>/backups/<time>)"),
           all_checkpoints: bool = typer.Option(False, "--all-checkpoints",
                                                help="every complete checkpoint, not only the champion")
           ) -> None:
    """A consistent snapshot of the realm (ledger, realm.toml, hosts, the champion's
    weights), safe while DIO trains.

    Example: realm backup /mnt/nas/realm-backup --all-checkpoints"""
    from .store.backup import BackupError
    try:
        _print(_guarded(_realm().backup, dest, all_checkpoints))
    except BackupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


@app.command()
def restore(src: Path) -> None:
    """Bring the realm back from a backup (`realm down` first); what it replaces is kept
    in backups/auto/<time>-pre-restore/.

    Example: realm restore /mnt/nas/realm-backup"""
    from .store.backup import BackupError
    try:
        _print(_guarded(_realm().restore, src))
    except BackupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def _play_headless(realm) -> int:
    """The Weaver's services (daemon, Task Master) in the foreground, without Jupyter."""
    import logging
    import signal
    import threading

    from .services.weaver import Weaver
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    weaver = Weaver(realm.paths, logging.getLogger("realm.play"), ledger=realm.ledger)
    typer.echo(f"Realm home: {realm.paths.home}\nDaemon and Task Master running (Ctrl-C to stop)...")
    weaver.start()
    try:
        done.wait()
    finally:
        logging.getLogger("realm.play").info("stopping: the daemon first, then the Task Master")
        weaver.stop()
    return 0


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def tavern(ctx: typer.Context, address: str = typer.Option("127.0.0.1", help="Address to listen on."),
           port: int = 5006,
           basic_auth: str = typer.Option(None, help="A password, or a JSON file of user: password."),
           oauth_provider: str = typer.Option(None, help="Panel OAuth provider (github, google, ...)."),
           cookie_secret: str = typer.Option(None, help="Default: a fresh random secret."),
           allow_websocket_origin: list[str] = typer.Option([], help="host[:port] browsers use.")
           ) -> None:
    """The Tavern as a Panel app, a route per page (/, /quests, /oracle, /vault, /settings,
    /scheduler, /guild); 127.0.0.1 unless exposed with a login.

    Another address, or a websocket origin of another host, needs --basic-auth or
    --oauth-provider. Extra arguments go to the app (--oauth-key, --oauth-secret, ...)."""
    from .services.tavern_server import ExposureError, TavernServer

    server = TavernServer(address, port, basic_auth, oauth_provider, cookie_secret,
                          list(allow_websocket_origin), list(ctx.args))
    try:
        args = server.argv()
    except ExposureError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    env = dict(os.environ, REALM_HOME=str(RealmPaths.at().home))
    typer.echo(f"The Tavern: {server.describe()}", err=True)
    os.execvpe(args[0], args, env)


def _without_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not a.startswith(tuple(f"{n}=" for n in names)):
            out.append(a)
    return out


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env() -> dict[str, str]:
    """Environment for a Jupyter server with the realm extension enabled."""
    env = dict(os.environ)
    from .store.paths import resource_dir
    conf = str(resource_dir("jupyter-config"))
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (conf, env.get("JUPYTER_CONFIG_PATH", "")) if p)
    env["REALM_HOME"] = str(RealmPaths.at().home)
    return env




if __name__ == "__main__":
    app()
