"""`python -m machine`: the light path for read-only verbs (machine/fast.py), else the full CLI."""
import sys

from machine.fast import main

sys.exit(main())
