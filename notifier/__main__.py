"""`python -m notifier publish | check | run --dry-run`; see notifier.cli."""

import sys

from notifier.cli import as_command, configure_logging, main

configure_logging()
sys.exit(as_command(main))
