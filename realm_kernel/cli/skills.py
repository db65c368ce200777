"""`realm skills`: skill definitions, problems, evals, sparring, targeted practice and the
passives."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import open_realm, print_json

app = typer.Typer(help="Skills: BIN, SY, their levels, primitives and evals.", no_args_is_help=True)


def _skill_errors():
    """Turn a skill error into a clear message and exit code 2."""
    from contextlib import contextmanager

    from ..api import SkillError

    @contextmanager
    def guard():
        try:
            yield
        except SkillError as e:
            typer.echo(str(e), err=True)
            raise typer.Exit(2) from e
    return guard()


@app.command("list")
def skills_list() -> None:
    """Every skill with its levels, primitives and passive."""
    with _skill_errors():
        print_json(open_realm().skills.list(levels=False))


@app.command("show")
def skills_show(skill: str, level: int = typer.Option(None, "--level", help="Only this level.")) -> None:
    """A skill's definition (or one level's parameters and a sample problem)."""
    import realm_skills as skills
    with _skill_errors():
        d = skills.skill_def(skill)
        if level is None:
            print_json(d.model_dump(mode="json"))
            return
        p = skills.generate(skill, level, 1, seed=0)[0]
        print_json({"skill": skill, "level": level,
                    "parameters": skills.level_def(skill, level).model_dump(mode="json"),
                    "sample": {"primitive_id": p.primitive_id, "question": p.question, "answer": p.answer}})


@app.command("catalog")
def skills_catalog() -> None:
    """The 11 passives and their primitives, grouped by track."""
    from realm_skills.catalog import catalog
    with _skill_errors():
        print_json({track: [{"id": p.id, "name": p.name, "passive": p.passive, "skill": p.skill}
                        for p in prims] for track, prims in catalog().by_track().items()})


@app.command("generate")
def skills_generate(skill: str, level: int = typer.Option(1, "--level"),
                    count: int = typer.Option(5, "--count"), seed: int = typer.Option(0, "--seed"),
                    out: Path = typer.Option(None, "--out", help="Write a chat .jsonl here "
                                             "instead of printing problems.")) -> None:
    """Generate problems (printed as JSON lines, or a quest file with --out)."""
    import realm_skills as skills

    from ..quests.formats import write_quest
    with _skill_errors():
        problems = skills.generate(skill, level, count, seed)
    if out:
        typer.echo(write_quest(out, [p.as_example() for p in problems]))
        return
    for p in problems:
        typer.echo(json.dumps(p.as_dict(), ensure_ascii=False, default=str))


@app.command("eval")
def skills_eval(skill: str, answers: Path, level: int = typer.Option(..., "--level"),
                step: int = typer.Option(None, "--step"),
                checkpoint: str = typer.Option(None, "--checkpoint"),
                spar: bool = typer.Option(False, "--spar", help="Queue sparring from wrong answers."),
                ) -> None:
    """Score ANSWERS (a .jsonl of {"answer": ...} in eval order) against the level's
    eval batch, store it in the ledger and optionally queue sparring."""
    rows = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [str(r.get("answer", "")) for r in rows]
    with _skill_errors():
        print_json(open_realm().skills.record_answers(skill, level, texts, step, checkpoint, spar))


@app.command("eval-report")
def skills_eval_report(skill: str, threshold: float = typer.Option(0.8, "--threshold")) -> None:
    """Skill level and level-up progress, latest evals, weak primitives (from the ledger)."""
    with _skill_errors():
        print_json(open_realm().skills.eval_report(skill, threshold))


def _skill_tool(fn, *args, **kwargs) -> None:
    """Run a skill-tooling call: skill errors exit 2, a missing checkpoint exits 1."""
    with _skill_errors():
        try:
            print_json(fn(*args, **kwargs))
        except FileNotFoundError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e


@app.command("spar")
def skills_spar(skill: str = typer.Option(..., "--skill", help="Skill id (bin, sy, ...)."),
                count: int = typer.Option(40, "--count", min=1, help="Fresh problems to ask."),
                step: int = typer.Option(None, "--step", help="Checkpoint step (default: the newest)."),
                seed: int = typer.Option(None, "--seed")) -> None:
    """Spar a checkpoint: COUNT fresh problems at the skill's level; each wrong answer
    becomes 3 examples in queue/high (`realm skills spar --skill bin --count 40 --step 100`)."""
    _skill_tool(open_realm().skills.spar_checkpoint, skill, count, step, seed)


@app.command("target")
def skills_target(skill: str = typer.Option(..., "--skill", help="Skill id."),
                  threshold: float = typer.Option(0.8, "--threshold", min=0.0, max=1.0,
                                                  help="Primitives under this accuracy are weak."),
                  count: int = typer.Option(200, "--count", min=1, help="Problems in the quest."),
                  level: int = typer.Option(None, "--level", help="Default: the skill's level."),
                  seed: int = typer.Option(None, "--seed")) -> None:
    """Targeted practice: a quest weighted to the primitives under THRESHOLD in the
    level's latest eval, into queue/high (`realm skills target --skill bin --threshold 0.8 --count 200`)."""
    with _skill_errors():
        path = open_realm().skills.targeted_quest(skill, level, count, threshold, seed)
    print_json({"skill": skill, "quest": path.name, "path": str(path), "count": count,
                "threshold": threshold})


@app.command("check-sparring")
def skills_check_sparring() -> None:
    """Check every queued sparring file (queue/*/sparring*.jsonl) as a quest and by the
    sparring rules; exit 1 if any fails (`realm skills check-sparring`)."""
    rows = open_realm().skills.check_sparring()
    print_json({"files": len(rows), "bad": sum(not r["ok"] for r in rows), "checked": rows})
    if any(not r["ok"] for r in rows):
        raise typer.Exit(1)


@app.command("passives")
def skills_passives(history: bool = typer.Option(False, "--history", help="The forgetting watch's "
                                                  "accuracy over steps instead of the catalogue."),
                    passive: str = typer.Option(None, "--passive", help="Only this passive.")) -> None:
    """The 11 passives with primitives and knobs, or with --history the passive probes
    over steps, drop flags and probe cost (`realm skills passives --history`)."""
    realm = open_realm()
    with _skill_errors():
        print_json(realm.skills.passive_history(passive) if history else
               [p for p in realm.skills.passives() if passive in (None, p["id"])])


@app.command("probe")
def skills_probe(step: int = typer.Option(None, "--step", help="Checkpoint step (default: the newest).")
                 ) -> None:
    """Run the forgetting watch's fixed passive probe set on a checkpoint now and record
    it (`realm skills probe --step 100`)."""
    _skill_tool(open_realm().skills.probe_passives, step)


@app.command("primitives")
def skills_primitives(skill: str, summary: bool = typer.Option(False, "--summary", help="Add "
                                                                "accuracy from the ledger.")) -> None:
    """A skill's primitives and the levels using each; --summary adds latest/best
    accuracy per primitive (`realm skills primitives bin --summary`)."""
    realm = open_realm()
    _skill_tool(realm.skills.primitive_summary if summary else realm.skills.primitives, skill)
