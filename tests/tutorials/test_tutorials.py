"""Tutorial 6 runs in its quick mode and writes its pictures. (Tutorials 1 to 3 run, their pictures read back,
in test_tutorial_pictures.py; the others have their own test files.)"""
import pytest

from tests.tutorial_kit import run


@pytest.mark.parametrize("script, pictures", [
    ("06_functional_api.py", ["model.png", "curves.png", "predictions.png"]),
])
def test_tutorial_runs_in_quick_mode(tmp_path, script, pictures):
    result = run(script, "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in pictures:
        assert (tmp_path / name).stat().st_size > 1000, name
