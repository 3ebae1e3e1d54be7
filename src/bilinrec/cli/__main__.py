"""``python -m bilinrec.cli``: the ``bilinrec`` command without the installed entry point."""

import sys

from bilinrec.cli import main

sys.exit(main())
