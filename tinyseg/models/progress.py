"""What `fit` shows: a Keras-style progress line (the History it returns is in tinyseg/callbacks.py).

    12/50 [=====>........] - ETA: 3s - loss: 0.4123 - accuracy: 0.8801

On a terminal the line is redrawn in place (a carriage return, then the line, then "clear to the end of the
line") and always fits the terminal's width: the bar shrinks first, then disappears, then the last fields
are dropped. A line one character wider than the terminal would wrap, and the next redraw would then start
on a new row, scrolling the screen. Anywhere else (a log file, CI, a notebook's captured output) there is no
redrawing: one line per epoch, written when the epoch ends.

The ETA starts after the first step, which also pays for compiling kernels and allocating buffers and would
make the first estimates far too long.
"""
import shutil
import sys
import time

MIN_BAR = 10          # a narrower bar says nothing; below this the bar is dropped instead


def format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgressBar:
    """The progress line of one epoch (see the module docstring).

    verbose=1: on a terminal the bar, redrawn; elsewhere only the epoch's closing line. verbose=2: only the
    closing line. verbose=0: nothing. width: the terminal's columns (default: asked of the terminal).
    """

    def __init__(self, total_steps, verbose=1, bar_width=30, stream=None, width=None):
        self.total = total_steps
        self.verbose = verbose
        self.bar_width = bar_width
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.interactive = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self._last_draw = 0.0
        self._after_first = None          # (time, step) when the first step ended: the ETA counts from there

    def columns(self):
        return self.width if self.width is not None else shutil.get_terminal_size((80, 24)).columns

    def _bar(self, step, width):
        done = int(width * step / self.total) if self.total else width
        arrow = ">" if step < self.total else "="
        return "[" + "=" * max(done - 1, 0) + (arrow if done else "") + "." * (width - done) + "]"

    def render(self, step, middle, logs):
        """(line, fields left out): the line for `step` fitted to the width. The bar shrinks to MIN_BAR, then
        fields go from the end; if even the counter, the smallest bar and `middle` do not fit, the bar goes."""
        digits = len(str(self.total))
        counter = f"{step:>{digits}}/{self.total}"
        fields = [f"{k}: {v:.4f}" for k, v in (logs or {}).items()]
        limit = max(self.columns() - 1, 1)

        def assemble(bar_width, kept):
            head = counter + (" " + self._bar(step, bar_width) if bar_width else "")
            return " - ".join([head] + ([middle] if middle else []) + kept)

        for n in range(len(fields), -1, -1):
            room = limit - len(assemble(0, fields[:n])) - 3          # a space and the two brackets
            if room >= MIN_BAR:
                return assemble(min(self.bar_width, room), fields[:n]), fields[n:]
        return assemble(0, [])[:limit], fields

    def wrapped(self, fields):
        """Fields that did not fit, on further lines, broken between fields (never inside one)."""
        limit, lines, line = max(self.columns() - 1, 1), [], "   "
        for f in fields:
            if len(line) > 3 and len(line) + 3 + len(f) > limit:
                lines.append(line)
                line = "   "
            line += (" - " if len(line) > 3 else " ") + f
        return lines + [line[:limit]] if fields else []

    def update(self, step, logs):
        now = time.perf_counter()
        if self._after_first is None:
            self._after_first = (now, step)
        if not self.interactive:
            return
        if step < self.total and now - self._last_draw < 0.1:       # redraw at most 10 times a second
            return
        self._last_draw = now
        t0, s0 = self._after_first
        if step > s0:
            eta = "ETA: " + format_time((now - t0) / (step - s0) * (self.total - step))
        else:
            eta = "ETA: --"
        self.stream.write("\r" + self.render(step, eta, logs)[0] + "\033[K")
        self.stream.flush()

    def close(self, logs):
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / max(self.total, 1)
        middle = f"{format_time(elapsed)} {per_step * 1000:.0f}ms/step"
        if self.interactive:                  # overwrite the bar, clear what is left of it; wrap what is left out
            line, rest = self.render(self.total, middle, logs)
            self.stream.write("\r" + line + "\033[K\n" + "".join(r + "\n" for r in self.wrapped(rest)))
        else:                                 # a log: the whole line, nothing dropped
            self.stream.write(f"{self.total}/{self.total} - {middle}" + (" - " + format_logs(logs) if logs
                                                                         else "") + "\n")
        self.stream.flush()
