"""`python -m tinyseg ...` is the same as the `tinyseg` command."""
import sys

from .cli import main

sys.exit(main())
