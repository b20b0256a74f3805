"""Shared pytest set-up: make tests/support importable (no tests/__init__.py: verl's wheel owns `tests`)."""

import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))
