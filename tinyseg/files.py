"""Files written whole or not at all, with the permissions a new file would have.

Every file tinyseg writes (model files, JSON, PNG pictures) goes through `replaced_whole`: the content is
written to a temporary file in the target's own folder, which is renamed over the target only once it is
complete. A rename within one folder is atomic, so a crash or an error mid-way leaves the old file (or none),
never half a file, and a reader never sees a file being written.

A temporary file from tempfile.mkstemp is private (mode 0600); before the rename it gets the mode of the file
it replaces, or, for a new file, what open() would give: 0666 less the process's umask (0644 under umask 022).
A folder that cannot take the temporary (read-only, no permission) is reported with the file that was to be
written, not the temporary's made-up name.

JSON (`write_json`) is always JSON: NaN and infinities, which json.dump would write as the bare words NaN and
Infinity that no JSON parser accepts, become null. A path that is a symlink is written through (the link
stays, its target gets the content); a path that is neither a regular file nor missing (a device, a pipe, a
folder) is refused, so /dev/null is never replaced, while a symlink to a stream or to one of the process's
open files (/dev/stdout, also when the shell sends it to a file) gets the text in one write (output_kind).
"""
import contextlib
import json
import math
import os
import stat
import sys
import tempfile


@contextlib.contextmanager
def replaced_whole(path, prefix=".tinyseg-", suffix=".tmp", durable=False):
    """Context manager: yields a temporary path in `path`'s folder to write the content to; on leaving the
    block without an error the temporary is given `path`'s mode and renamed over `path`, on an error it is
    removed. durable=True also flushes the file and the folder to disk (fsync), for files worth the wait."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    mode = new_file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as err:                    # its message would name the temporary, which no one asked for
        raise type(err)(err.errno, f"cannot write {path}: {(err.strerror or 'error').lower()} in its folder "
                        f"{folder}") from None
    os.close(fd)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        sync_folder(folder)


def new_file_mode(path):
    """The mode of the file about to be replaced, or 0666 less the umask (what open() gives a new file)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    return 0o666 & ~umask()


def umask():
    """The process's umask, read without changing it where Linux allows (os.umask can only set it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sync_folder(folder):
    """Make a rename durable, where the system lets a folder be fsynced."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path, obj, flag=None):
    """Write `obj` as JSON to `path` whole or not at all (NaN and infinities as null), through a symlink, and
    never over anything but a regular file; `flag` (e.g. '--json') is named in the error."""
    text = json.dumps(finite_json(obj), indent=2, allow_nan=False) + "\n"
    if output_kind(path, flag) == "stream":
        sys.stdout.flush()                            # what was printed before comes before
        with open(path, "a") as f:                    # "a": never truncate what the stream's file holds
            f.write(text)
        return
    with replaced_whole(os.path.realpath(path), prefix=".tinyseg-json-") as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def output_kind(path, flag=None):
    """'file' (a regular file or a new one, replaced whole; a symlink's target is) or 'stream' (a symlink to a
    stream or an open file of this process: /dev/stdout, /dev/fd/N, /proc/self/fd/N, written through); a
    folder, a device or a pipe named directly is refused with ValueError (`flag` names the argument)."""
    path = os.fspath(path)
    real = os.path.realpath(path)
    if os.path.islink(path) and not os.path.isdir(real) and (
            _through_open_files(path) or (os.path.exists(real) and not os.path.isfile(real))):
        return "stream"
    if os.path.exists(real) and not os.path.isfile(real):
        what = "a folder" if os.path.isdir(real) else "not a regular file"
        raise ValueError(f"{flag + ' ' if flag else ''}{path} is {what}; give the name of a file to write")
    return "file"


def _through_open_files(path):
    """Whether a chain of symlinks passes through /dev/stdout, /dev/fd/N or /proc/.../fd/N: an open file of the
    process, which must be written to, not replaced (a shell's `> file` would lose what was printed)."""
    for _ in range(40):
        if os.path.abspath(path).startswith(("/dev/std", "/dev/fd/", "/proc/")):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(os.path.abspath(path)), os.readlink(path))
    return False


def finite_json(obj):
    """`obj` with every NaN or infinite float (NumPy's too) replaced by None, lists, tuples and dicts walked."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:      # a NumPy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
