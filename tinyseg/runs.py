"""A run folder: what `tinyseg train --out DIR` leaves behind, and how no run is ever lost.

    DIR/                     the latest finished run: model.npz, best.npz, classes.json, history.json,
                             metrics.json and the pictures, then run.json ({"finished": true, ...}) last
    DIR/unfinished/          the run being trained, or one that was interrupted: after every epoch its
                             history.json, best.npz (when the monitored value improved) and model.npz (the
                             model with its optimizer state and epochs_done) are each written whole, then
                             run.json says how far it got ({"finished": false, "epochs_done": k, ...})
    DIR/previous/1, 2, ...   earlier runs, moved aside (never deleted): a finished run when a later one has
                             finished, an interrupted one when a new run starts instead of resuming it
    DIR/.tinyseg-lock        while a train writes DIR: the pid of its process

Why this layout. DIR/model.npz is what the README, the tutorials and predict's default point at, so after a
run has finished it must be that run's model, and until then it stays the earlier run's, whole. So a run is
trained in DIR/unfinished and moved in only once it has finished: the earlier run's files are first gathered
in previous/.partial-N and that folder renamed to previous/N (one step), then the new run's files are renamed
into DIR, run.json last. Every rename is atomic; if the process dies between two, the next train into DIR
completes the move before anything else (`recover`), so DIR holds one whole run or none, and every run's
files are somewhere. Files train does not write (predict's default DIR/predictions, your notes) stay put.

The lock. One process at a time writes DIR: the lock file is held with flock, which the system releases when
the process ends however it ends, so the lock of a killed run is taken over by the next; a second train while
the first lives gets one line naming the first's pid. (Where flock is missing, the pid in the file decides:
a lock whose process is gone is taken over.)
"""
import contextlib
import json
import os
import shutil
import time

from . import __version__
from .callbacks import Callback
from .files import write_json

RUN_FILE = "run.json"                 # the record of a run; in DIR, written last and always finished: true
CLASSES_FILE = "classes.json"         # beside model.npz: what the labels mean, for predict and evaluate
UNFINISHED = "unfinished"
PREVIOUS = "previous"
LOCK_FILE = ".tinyseg-lock"
PARTIAL = ".partial-"
STARTING = ".tinyseg-starting"
RUN_OUTPUTS = ("model.npz", "best.npz", CLASSES_FILE, "history.json", "metrics.json", "curves.png",
               "predictions.png", "per_class_iou.png", "confusion_matrix.png")     # run.json aside
OURS = (UNFINISHED, PREVIOUS, LOCK_FILE)


# --- before any work ------------------------------------------------------------------------------------------
def check_out_folder(path, flag="--out"):
    """Refuse, before any work, an output folder that is an existing file (or anything but a folder)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a file, not a folder; give a folder (it is created if missing)")


def check_run_folder(path):
    """train --out: refuse a file, and a non-empty folder that holds no tinyseg run (no run.json, and files
    train does not write), so that train never mixes its files with others'."""
    check_out_folder(path)
    if not os.path.isdir(path):
        return
    entries = [e for e in os.listdir(path) if not e.startswith(".")]
    if RUN_FILE in entries or UNFINISHED in entries or PREVIOUS in entries:
        return
    foreign = sorted(e for e in entries if e not in RUN_OUTPUTS)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ValueError(f"--out {path} is not empty and holds no {RUN_FILE} of a tinyseg run ({shown}); give a "
                         f"new or empty folder, or one an earlier `tinyseg train` wrote")


# --- one process per folder -------------------------------------------------------------------------------
class RunLock:
    """`with RunLock(folder):` holds folder/.tinyseg-lock (with the pid) or raises ValueError naming the owner."""

    def __init__(self, folder):
        self.folder, self.path, self.fd = folder, os.path.join(folder, LOCK_FILE), None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:                                   # no flock: the pid in the file decides
            self._take_by_pid()
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.read(fd, 32).decode(errors="replace").strip()
                os.close(fd)
                raise self._busy(owner) from None
            # its last owner may have removed the file between our open and our flock: lock the one on disk
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def _take_by_pid(self):
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                with open(self.path) as f:
                    owner = f.read().strip()
                if owner.isdigit() and _alive(int(owner)):
                    raise self._busy(owner) from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)                      # stale: its process is gone
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return
        raise self._busy("unknown")

    def _busy(self, owner):
        return ValueError(f"--out {self.folder} is being written by another tinyseg train (process {owner or '?'}); "
                          f"wait for it to end, or give another --out")

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(self.fd)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# --- the folder's layout, kept whole --------------------------------------------------------------------------
def read_record(path):
    """The run.json at `path` as a dict, or None if there is none (or it is no JSON object)."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def recover(folder, resume=False):
    """Under the lock, before a run starts: complete a move that a dead process left half-done, and move aside
    what is not a finished run (an interrupted run unless resuming it; files of a run without a finished
    run.json). Returns lines that say what was moved where."""
    notes = []
    previous = os.path.join(folder, PREVIOUS)
    if os.path.isdir(previous) and any(e.startswith(PARTIAL) for e in os.listdir(previous)):
        _move_old_run_aside(folder)
    unfinished = os.path.join(folder, UNFINISHED)
    record = read_record(os.path.join(unfinished, RUN_FILE))
    if record is not None and record.get("finished") is True:
        swap_in(folder)
        notes.append(f"completed moving the run that finished in {unfinished} into {folder}")
    top = read_record(os.path.join(folder, RUN_FILE))
    if (top is None or top.get("finished") is not True) and _old_outputs(folder, top):
        notes.append(f"moved the files of an unfinished earlier run to {_move_old_run_aside(folder)}")
    if os.path.isdir(unfinished) and not resume:
        target = _next_previous(folder)
        os.rename(unfinished, target)
        done = (record or {}).get("epochs_done", 0)
        notes.append(f"moved an interrupted run ({done} epochs done) to {target}; nothing was deleted")
    return notes


def swap_in(folder):
    """The run in folder/unfinished (its run.json says finished: true) becomes folder's run; the run there
    before goes to folder/previous/N. Returns (the names moved in, run.json aside; previous/N or None)."""
    earlier = None
    if os.path.isfile(os.path.join(folder, RUN_FILE)):
        earlier = _move_old_run_aside(folder)
    unfinished = os.path.join(folder, UNFINISHED)
    names = sorted(e for e in os.listdir(unfinished) if e != RUN_FILE and not e.startswith("."))
    for name in names:                                # renames within one file system: each one atomic
        os.replace(os.path.join(unfinished, name), os.path.join(folder, name))
    os.replace(os.path.join(unfinished, RUN_FILE), os.path.join(folder, RUN_FILE))
    shutil.rmtree(unfinished, ignore_errors=True)     # only temporaries of killed writes are left in it
    return names, earlier


def _old_outputs(folder, record):
    listed = (record or {}).get("outputs") or []
    plain = {n for n in listed if isinstance(n, str) and n == os.path.basename(n) and n not in ("", ".", "..")}
    names = (set(RUN_OUTPUTS) | plain | {RUN_FILE}) - set(OURS)
    return sorted(n for n in names if os.path.isfile(os.path.join(folder, n)) or
                  os.path.islink(os.path.join(folder, n)))


def _move_old_run_aside(folder):
    """Gather the run at folder's top in previous/.partial-N (an existing one: a move that was cut short),
    then rename that to previous/N in one step. Returns previous/N."""
    previous = os.path.join(folder, PREVIOUS)
    os.makedirs(previous, exist_ok=True)
    partial = next((os.path.join(previous, e) for e in sorted(os.listdir(previous)) if e.startswith(PARTIAL)), None)
    if partial is None:
        partial = os.path.join(previous, PARTIAL + os.path.basename(_next_previous(folder)))
        os.mkdir(partial)
    record = read_record(os.path.join(folder, RUN_FILE)) or read_record(os.path.join(partial, RUN_FILE))
    for name in _old_outputs(folder, record):
        os.replace(os.path.join(folder, name), os.path.join(partial, name))
    target = os.path.join(previous, os.path.basename(partial)[len(PARTIAL):])
    os.rename(partial, target)
    return target


def _next_previous(folder):
    previous = os.path.join(folder, PREVIOUS)
    os.makedirs(previous, exist_ok=True)
    numbers = [int(e.removeprefix(PARTIAL)) for e in os.listdir(previous) if e.removeprefix(PARTIAL).isdigit()]
    return os.path.join(previous, str(max(numbers, default=0) + 1))


# --- a run from start to finish ----------------------------------------------------------------------------------
def now():
    """The local time as run.json records it, e.g. 2026-12-07T21:40:13+0000."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def start(folder, arguments):
    """Make folder/unfinished and write its run.json (finished: false, no epoch done). Returns the record."""
    record = {"format": "tinyseg-run", "finished": False, "command": "train", "arguments": arguments,
              "epochs_done": 0, "epochs": arguments.get("epochs"), "started": now(),
              "tinyseg_version": __version__}
    starting = os.path.join(folder, STARTING)        # unfinished/ appears with its run.json, in one rename
    shutil.rmtree(starting, ignore_errors=True)      # a start killed before its rename: no epoch, no work
    os.mkdir(starting)
    write_json(os.path.join(starting, RUN_FILE), record)
    os.rename(starting, os.path.join(folder, UNFINISHED))
    return record


def stopped(folder, record, err):
    """After an error or Ctrl-C: folder/unfinished/run.json says how it ended and how far it got."""
    record.update(finished=False, ended=now(),
                  error="interrupted" if isinstance(err, KeyboardInterrupt) else " ".join(str(err).split()))
    with contextlib.suppress(OSError):
        write_json(os.path.join(folder, UNFINISHED, RUN_FILE), record)


def finish(folder, record, seconds):
    """Mark the run finished in folder/unfinished, then move it in (`swap_in`): (names written, where the
    earlier run went or None)."""
    unfinished = os.path.join(folder, UNFINISHED)
    outputs = sorted(e for e in os.listdir(unfinished) if e != RUN_FILE and not e.startswith("."))
    record.update(finished=True, ended=now(), seconds=round(seconds, 3), outputs=outputs)
    with _ctrl_c_deferred():                  # a few renames: Ctrl-C arrives once they are all done
        write_json(os.path.join(unfinished, RUN_FILE), record)
        return swap_in(folder)


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Block SIGINT in the block (where the system allows): it is delivered, as KeyboardInterrupt, after."""
    import signal
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, ValueError, OSError):            # no pthread_sigmask, or not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --- after every epoch -----------------------------------------------------------------------------------------
class EpochCheckpoint(Callback):
    """After every epoch, into `folder`: history.json (every epoch so far, with `extra`), best.npz when
    `monitor` improved (higher is better), model.npz (weights, optimizer state, epochs_done), then run.json's
    epochs_done; each file written whole, so a run stopped at any moment keeps its last finished epoch.

    `earlier`: the history of the epochs a resumed run already has ({name: [values]}), and `best` the best
    monitored value among them, so that the history and best.npz continue as an unbroken run's would."""

    def __init__(self, folder, record, extra=None, monitor="val_mean_iou", earlier=None, best=None):
        super().__init__()
        self.folder, self.record, self.extra, self.monitor = folder, record, dict(extra or {}), monitor
        self.history = {k: list(v) for k, v in (earlier or {}).items()}
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        write_json(os.path.join(self.folder, "history.json"), self.history_record())
        value = (logs or {}).get(self.monitor)
        if value is not None and value == value and (self.best is None or value > self.best):
            self.best = float(value)
            self.model.save(os.path.join(self.folder, "best.npz"))
        self.model.save(os.path.join(self.folder, "model.npz"))
        self.record.update(epochs_done=epoch + 1, best={"monitor": self.monitor, "value": self.best})
        write_json(os.path.join(self.folder, RUN_FILE), self.record)

    def history_record(self, **more):
        return {"history": self.history, "epochs_done": len(self.history.get("loss", [])), **self.extra, **more}


def resume_point(folder):
    """(record, model or None, earlier history, best) of the run in folder/unfinished, for --resume.

    The model file is the truth of how far the run got (model.epochs_done): the history is cut to it, since
    a process killed between writing history.json and model.npz leaves one epoch more in the history."""
    from .saving import load_model
    unfinished = os.path.join(folder, UNFINISHED)
    record = read_record(os.path.join(unfinished, RUN_FILE))
    if record is None or record.get("finished") is not False:
        raise ValueError(f"--resume {folder}: it holds no interrupted run ({os.path.join(unfinished, RUN_FILE)} "
                         f"is missing); the runs there finished")
    model = None
    if os.path.isfile(os.path.join(unfinished, "model.npz")):
        model = load_model(os.path.join(unfinished, "model.npz"))
    done = 0 if model is None else model.epochs_done
    saved = read_record(os.path.join(unfinished, "history.json")) or {}
    history = {k: v[:done] for k, v in (saved.get("history") or {}).items()}
    values = [v for v in history.get("val_mean_iou", []) if v is not None and v == v]
    return record, model, history, (max(values) if values else None)


__all__ = ["RunLock", "EpochCheckpoint", "check_run_folder", "check_out_folder", "recover", "start", "finish",
           "stopped", "swap_in", "resume_point"]
