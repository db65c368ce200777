"""The entry point every supervised realm process shares (`python -m realm_kernel.daemon`,
`python -m realm_kernel.taskmaster`): --home, logs on stdout (the Weaver's log file), and
exit code ALREADY_RUNNING when another instance holds the realm, which the Weaver reads
as "not mine to restart"."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

ALREADY_RUNNING = 3


def service_main(argv: list[str] | None, description: str, name: str,
                 run: Callable[[str | None], None], already: type[Exception]) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--home", default=None, help="realm home (default: REALM_HOME)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(args.home)
    except already as e:
        print(f"realm {name}: {e}", file=sys.stderr)
        return ALREADY_RUNNING
    return 0
