"""`python -m labkit` runs the labkit command."""
import sys

from .cli import main

sys.exit(main())
