"""Skill generator modules: one per skill, each ending with
`register_generator("<name>", __name__)`; the registry imports every module here, so a
new skill is skills/defs/<id>.yaml (`generator: <name>`) plus one file here. BIN's and
SY's generators (binary.py, syllacrostic.py) predate this folder and stay beside it."""
