"""What `fit` shows: a Keras-style progress bar (the History it returns is in tinyseg/callbacks.py)."""
import sys
import time


def _format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgressBar:
    """`12/50 [=====>........] - ETA: 3s - loss: 0.4123 - accuracy: 0.8801`, redrawn in place on a terminal.

    verbose=1: the bar (on a terminal, redrawn; elsewhere only the epoch's closing line); verbose=2: only the
    closing line; verbose=0: nothing.
    """

    def __init__(self, total_steps, verbose=1, width=30, stream=None):
        self.total = total_steps
        self.verbose = verbose
        self.width = width
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.interactive = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0

    def _bar(self, step):
        done = int(self.width * step / self.total) if self.total else self.width
        arrow = ">" if step < self.total else "="
        return "[" + "=" * max(done - 1, 0) + (arrow if done else "") + "." * (self.width - done) + "]"

    def update(self, step, logs):
        if not self.interactive:
            return
        now = time.perf_counter()
        if step < self.total and now - self._last_draw < 0.1:       # redraw at most 10 times a second
            return
        self._last_draw = now
        elapsed = now - self.start
        eta = elapsed / step * (self.total - step) if step else 0.0
        digits = len(str(self.total))
        line = f"{step:>{digits}}/{self.total} {self._bar(step)} - ETA: {_format_time(eta)}"
        if logs:
            line += " - " + format_logs(logs)
        self.stream.write("\r" + line + "\033[K")
        self.stream.flush()

    def close(self, logs):
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / max(self.total, 1)
        line = (f"{self.total}/{self.total} {self._bar(self.total)} - {_format_time(elapsed)} "
                f"{per_step * 1000:.0f}ms/step")
        if logs:
            line += " - " + format_logs(logs)
        if self.interactive:                  # overwrite the bar, clear what is left of it
            line = "\r" + line + "\033[K"
        self.stream.write(line + "\n")
        self.stream.flush()
