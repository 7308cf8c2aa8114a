"""What many test files need, written once: where the repository is."""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent          # the checkout under test, wherever a test file sits
