"""`python -m realm_kernel.cli`: how the realm starts itself (launcher, `realm train` ranks)."""

from . import app

app()
