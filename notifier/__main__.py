"""`python -m notifier publish | check | run --dry-run`; see notifier.cli."""

import sys

from notifier.cli import configure_logging, main

configure_logging()
sys.exit(main())
