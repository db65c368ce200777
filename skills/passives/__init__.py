"""The passives' primitive generators, one module per passive; each registers its
primitives with `@primitive` when imported (see ..registration)."""
