"""`python -m sandbox serve` (sandbox/serve.py) or `python -m sandbox demo` (sandbox/demo.py)."""

import sys
from collections.abc import Callable, Sequence

from notifier.cli import as_command
from sandbox import demo, serve

COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"serve": serve.main, "demo": lambda _argv: demo.main()}

if sys.argv[1:2] and sys.argv[1] in COMMANDS:
    command, argv = COMMANDS[sys.argv[1]], sys.argv[2:]
    sys.exit(as_command(lambda: command(argv)))
sys.exit(f"usage: python -m sandbox {{{' | '.join(COMMANDS)}}} [options]")
