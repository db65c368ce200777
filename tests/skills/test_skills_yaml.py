"""A bad skill YAML fails with the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import realm_skills as skills
from realm_skills.loader import DEFS

BIN = yaml.safe_load((DEFS / "bin.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True),
                    encoding="utf-8")
    return path


def _with(**changes) -> dict:
    data = yaml.safe_load(yaml.safe_dump(BIN, allow_unicode=True))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for k in parents:
            node = node[int(k) if k.isdigit() else k]
        node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(("change", "key", "problem"), [
    ({"levels__7__bits": 0}, "levels.7.bits", "greater than or equal to 1"),
    ({"levels__7__bitz": 4}, "levels.7.bitz", "Extra inputs are not permitted"),
    ({"levels__7__work": "some"}, "levels.7.work", "'none', 'brief' or 'full'"),
    ({"levels__7__primitives": {"bin_nope": 1}}, "levels.7.primitives.bin_nope", "undeclared primitive"),
    ({"levels__7__primitives": {"bin_and": 0}}, "levels.7.primitives", "weights must be > 0"),
    ({"primitives__0__op": "divide"}, "primitives.0.op", "unknown op 'divide'"),
    ({"eval_size": -5}, "eval_size", "greater than or equal to 1"),
    ({"level_up__accuracy": 1.5}, "level_up.accuracy", "less than or equal to 1"),
    ({"generator": "chess"}, "generator", "unknown generator 'chess'"),
    ({"levels__31": {"bits": 4, "primitives": {"bin_and": 1}}, "levels__33":
      {"bits": 4, "primitives": {"bin_and": 1}}}, "levels", "without gaps"),
])
def test_bad_values_name_file_key_and_problem(tmp_path, change, key, problem):
    path = _write(tmp_path, _with(**change))
    with pytest.raises(skills.SkillError) as e:
        skills.load_skill_file(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: {key}: "), msg
    assert problem in msg


def test_missing_key_and_bad_yaml_and_unused_primitive(tmp_path):
    data = _with()
    del data["name"]
    with pytest.raises(skills.SkillError, match=r"broken\.yaml: name: Field required"):
        skills.load_skill_file(_write(tmp_path, data))
    with pytest.raises(skills.SkillError, match=r"broken\.yaml: line \d+: invalid YAML: expected ',' or ']'"):
        skills.load_skill_file(_write(tmp_path, "id: bin\nname: [unclosed\n"))
    data = _with()
    data["primitives"].append({"id": "bin_extra", "op": "add", "name": "Unused"})
    with pytest.raises(skills.SkillError, match=r"primitives: declared but used by no level: \['bin_extra"):
        skills.load_skill_file(_write(tmp_path, data))
    with pytest.raises(skills.SkillError, match=r"levels\.5: not needs bits >= 4"):
        skills.load_skill_file(_write(tmp_path, _with(levels__5__bits=2)))


def test_sy_level_checks(tmp_path):
    sy = yaml.safe_load((DEFS / "sy.yaml").read_text(encoding="utf-8"))
    sy["levels"][10]["words"] = 2  # level 10 is acrostic
    with pytest.raises(skills.SkillError, match=r"levels\.10: acrostic needs words >= 3"):
        skills.load_skill_file(_write(tmp_path, sy))
    sy["levels"][10]["words"] = 3
    sy["levels"][4]["syllables"] = [3, 2]
    with pytest.raises(skills.SkillError, match=r"levels\.4: syllables must be"):
        skills.load_skill_file(_write(tmp_path, sy))


def test_the_template_is_a_valid_skill_and_a_level_is_a_yaml_edit(tmp_path):
    tpl = skills.load_skill_file(DEFS / "_template.yaml")
    assert tpl.id == "template" and tpl.max_level == 2
    # Adding a level is a YAML edit: the new level generates with no code change.
    data = _with(levels__31={"bits": 40, "operands": 5, "work": "brief",
                             "primitives": {"bin_add": 1, "bin_xor": 1}})
    d = skills.load_skill_file(_write(tmp_path, data))
    assert d.max_level == 31 and d.levels[31].bits == 40
    ps = skills.generate(d, 31, 20, seed=1)
    assert {p.primitive_id for p in ps} == {"bin_add", "bin_xor"} and ps[0].skill == "bin"
    assert all(len(p.final) in (40, 43) and skills.score(p, p.answer) for p in ps)
