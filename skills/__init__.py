"""Skills: procedural curricula defined by YAML under skills/defs/.

- `generate(skill_id, level, count, seed) -> list[Problem]`: pure and seeded. A batch
  draws from one `Random(seed)` stream, so a batch is a prefix of any larger batch with
  the same seed. No question repeats within a batch unless the level has fewer
  distinct problems than asked for (then repeats are allowed once 32 draws in a row
  found only seen questions).
- `score(problem, answer) -> bool`: strict after normalisation: only the last
  non-empty line of the answer counts, surrounding whitespace and a leading `Answer:`
  mark are dropped, and the rest must equal the golden final answer exactly (case,
  inner spacing and glyphs included).
- `generate_primitive(primitive_id, count, seed, **knobs) -> list[Problem]`: any of the
  catalogue's primitives on its own (passives from skills/passives/, BIN and SY from
  their lowest level that uses it); `generate_passive` gives a passive's probe shape.
- `run_eval`, `EvalResult`, `SkillState` (level-up rule), the passive/primitive
  catalogue and sparring live in their own modules and are re-exported here.
"""

from __future__ import annotations

from .evaluation import EvalResult, SkillState, run_eval
from .loader import SkillDef, SkillError
from .primitives import generate_passive, generate_primitive, knobs_for
from .problem import Problem, final_answer
from .registry import GENERATORS, MAX_DRAWS, generate, level_def, load_skill_file, score, skill_def, skill_ids

__all__ = ["EvalResult", "Problem", "SkillDef", "SkillError", "SkillState", "final_answer",
           "generate", "load_skill_file", "run_eval", "score", "skill_def", "skill_ids",
           "GENERATORS", "MAX_DRAWS", "level_def", "generate_primitive", "generate_passive",
           "knobs_for"]
