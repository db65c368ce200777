"""A broken skill YAML's error says exactly where and what: the YAML line (1-based), a
file that is not UTF-8 with the byte, a top level that is not a mapping, the bad value
itself, and how many more problems the file has (the skills target's loader survivors:
these details were only matched loosely)."""

from __future__ import annotations

import re

import pytest
import yaml

import realm_skills as skills
from realm_skills.loader import DEFS

BIN = yaml.safe_load((DEFS / "bin.yaml").read_text(encoding="utf-8"))


def _error(path) -> str:
    with pytest.raises(skills.SkillError) as e:
        skills.load_skill_file(path)
    return str(e.value)


def test_invalid_yaml_names_its_one_based_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: bin\nname: Binary\nlevels: [unclosed\nicon: x\n", encoding="utf-8")
    msg = _error(path)
    line = int(re.search(r": line (\d+): invalid YAML", msg).group(1))
    assert msg.startswith(f"{path}: line {line}: ")
    assert 3 <= line <= 4  # the unclosed list opens on line 3; PyYAML stops at its end


def test_not_utf8_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"id: bin\nname: caf\xe9\n")
    assert _error(path) == f"{path}: (file): not UTF-8 text (byte 17): invalid continuation byte"


def test_a_top_level_list_is_refused_by_name(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- id: bin\n", encoding="utf-8")
    assert _error(path) == f"{path}: (top level): expected a mapping of keys (id, name, levels, ...)"


def test_a_bad_value_is_quoted_and_further_problems_counted(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(BIN))
    data["eval_size"] = -5
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    msg = _error(path)
    assert msg.endswith("(got -5)"), msg
    assert "more]" not in msg
    data["level_up"]["accuracy"] = 1.5
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert _error(path).endswith("(got -5) [+1 more]")
    data["levels"] = "not a mapping"
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert _error(path).endswith(" [+2 more]")
