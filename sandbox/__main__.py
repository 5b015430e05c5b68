"""`python -m sandbox serve` (sandbox/serve.py) or `python -m sandbox demo` (sandbox/demo.py)."""

import sys

from sandbox import demo, serve

COMMANDS = {"serve": serve.main, "demo": lambda _argv: demo.main()}

if sys.argv[1:2] and sys.argv[1] in COMMANDS:
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
sys.exit(f"usage: python -m sandbox {{{' | '.join(COMMANDS)}}} [options]")
