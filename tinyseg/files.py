"""Files written whole or not at all, with the permissions a new file would have.

Every file tinyseg writes (model files, JSON, PNG pictures) goes through `replaced_whole`: the content is
written to a temporary file in the target's own folder, which is renamed over the target only once it is
complete. A rename within one folder is atomic, so a crash or an error mid-way leaves the old file (or none),
never half a file, and a reader never sees a file being written.

A temporary file from tempfile.mkstemp is private (mode 0600); before the rename it gets the mode of the file
it replaces, or, for a new file, what open() would give: 0666 less the process's umask (0644 under umask 022).
"""
import contextlib
import os
import stat
import tempfile


@contextlib.contextmanager
def replaced_whole(path, prefix=".tinyseg-", suffix=".tmp", durable=False):
    """Context manager: yields a temporary path in `path`'s folder to write the content to; on leaving the
    block without an error the temporary is given `path`'s mode and renamed over `path`, on an error it is
    removed. durable=True also flushes the file and the folder to disk (fsync), for files worth the wait."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    mode = new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
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
