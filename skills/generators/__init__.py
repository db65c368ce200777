"""Skill generator modules, one per skill generator, each decorating its `make` with
`@register_generator("<name>")`; the registry imports every module here (pkgutil), so a
new skill is skills/defs/<id>.yaml (`generator: <name>`) plus one file here."""
