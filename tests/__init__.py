"""tinyseg's tests, a package so that every test file, in whichever folder, imports the one kit the same way:
`from tests.helpers import ...` and `from tests.strategies import ...` (pytest puts the repository root on
sys.path for a package, from the repository root and from CI alike)."""
