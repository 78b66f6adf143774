"""`python -m tessera` is the `tessera` command (and what torchrun runs)."""

import sys

from tessera.cli import main

sys.exit(main())
