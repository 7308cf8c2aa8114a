"""tinyseg.files.replaced_whole: a file is replaced whole or not at all, with the usual permissions."""
import os
import stat

import pytest

from tinyseg.files import new_file_mode, replaced_whole, umask


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_what_open_would_give_it(tmp_path):
    target = tmp_path / "a.json"
    with replaced_whole(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and not target.exists()
        with open(tmp, "w") as f:
            f.write("whole")
    assert target.read_text() == "whole"
    assert mode(target) == 0o666 & ~umask()
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "a.png"
    target.write_text("old")
    os.chmod(target, 0o640)
    with replaced_whole(target, suffix=".png", durable=True) as tmp:
        with open(tmp, "w") as f:
            f.write("new")
    assert target.read_text() == "new" and mode(target) == 0o640 == new_file_mode(target)


def test_an_error_mid_way_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.npz"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with replaced_whole(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.npz"]
