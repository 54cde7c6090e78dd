"""`python -m labkit.teach.notebook clean|check|run|student ...`: labkit.teach.printed.stored's tools."""
import sys

from ..printed.stored import main

sys.exit(main(sys.argv[1:]))
