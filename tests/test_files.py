"""tinyseg.files: a file is replaced whole or not at all, with the usual permissions; JSON is always JSON."""
import json
import os
import stat

import numpy as np
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


# --- JSON: always JSON, never over anything but a regular file (issue 24) ---------------------------------
def test_write_json_writes_nan_and_infinity_as_null(tmp_path):
    from tinyseg.files import write_json
    write_json(tmp_path / "h.json", {"loss": [1.0, float("nan")], "acc": np.float32("inf"), "n": np.int64(3)})
    text = (tmp_path / "h.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {"loss": [1.0, None], "acc": None, "n": 3}


def test_write_json_that_cannot_serialise_leaves_the_old_file(tmp_path):
    from tinyseg.files import write_json
    (tmp_path / "h.json").write_text("old")
    with pytest.raises(TypeError):
        write_json(tmp_path / "h.json", {"bad": object()})
    assert (tmp_path / "h.json").read_text() == "old" and os.listdir(tmp_path) == ["h.json"]


def test_write_json_refuses_a_device_and_writes_through_a_symlink(tmp_path):
    from tinyseg.files import write_json
    os.mkfifo(tmp_path / "pipe")                       # a device node's stand-in: never risk /dev/null
    with pytest.raises(ValueError, match="--json .*pipe is not a regular file"):
        write_json(tmp_path / "pipe", {}, flag="--json")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    write_json(tmp_path / "link.json", {"a": 1})
    assert (tmp_path / "link.json").is_symlink() and json.loads((tmp_path / "real.json").read_text()) == {"a": 1}


def test_a_folder_that_refuses_the_temporary_names_the_target(tmp_path, monkeypatch):
    import tempfile

    def refused(prefix="", suffix="", dir=None):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "abc" + suffix))
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as err:
        with replaced_whole(tmp_path / "model.npz"):
            pass
    assert str(tmp_path / "model.npz") in str(err.value) and ".tinyseg-" not in str(err.value)
