"""`python -m notifier publish ...`; see notifier.publish."""

import sys

from notifier.publish import main

sys.exit(main())
