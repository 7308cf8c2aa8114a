"""The progress line fits the terminal and redraws in place only on a terminal. (The first run's note is
tested with the compile ahead it announces, in tests/kernels/test_warmup.py.)"""
import io

import pytest

from tinyseg.models.progress import MIN_BAR, ProgressBar

LOGS = {"loss": 0.41234, "accuracy": 0.88, "mean_iou": 0.7, "val_loss": 0.5, "val_accuracy": 0.81,
        "val_mean_iou": 0.6}


class Terminal(io.StringIO):
    def isatty(self):
        return True


def drawn_lines(text):
    """What a terminal shows: every redraw ('\\r' ... '\\033[K') and every finished line."""
    return [part for line in text.replace("\033[K", "").split("\n") for part in line.split("\r") if part]


def run_epoch(stream, width, steps=100):
    bar = ProgressBar(steps, stream=stream, width=width)
    for step in range(1, steps + 1):
        bar._last_draw = 0.0                     # draw every step, as a slow step would
        bar.update(step, LOGS)
    bar.close(LOGS)
    return stream.getvalue()


@pytest.mark.parametrize("width", [120, 80, 40])
def test_every_line_fits_the_terminal_and_nothing_is_lost(width):
    text = run_epoch(Terminal(), width)
    lines = drawn_lines(text)
    assert all(len(line) <= width - 1 for line in lines), max(lines, key=len)
    assert text.count("\n") >= 1 and text.count("\r") >= 100           # redrawn in place: few new lines
    final = text[text.rindex("\r") + 1:].replace("\033[K", "")
    for key, value in LOGS.items():                                    # the closing lines carry every value
        assert f"{key}: {value:.4f}" in final
    for line in final.splitlines():                                    # wrapped between fields, not inside
        assert line.count(":") == line.count(": ")


def test_at_80_columns_the_bar_stays_and_fields_go():
    line = drawn_lines(run_epoch(Terminal(), 80))[50]
    assert "[" in line and "]" in line and line.index("]") - line.index("[") - 1 >= MIN_BAR
    assert "val_mean_iou" not in line and "loss: 0.4123" in line


def test_not_a_terminal_gets_one_line_per_epoch():
    stream = io.StringIO()
    text = run_epoch(stream, 80)
    assert "\r" not in text and "\033" not in text and text.count("\n") == 1
    assert text.startswith("100/100 - ") and "val_mean_iou: 0.6000" in text


def test_eta_starts_after_the_first_step():
    stream = Terminal()
    bar = ProgressBar(10, stream=stream, width=80)
    bar.update(1, {"loss": 1.0})
    assert "ETA: --" in stream.getvalue()
    bar._last_draw = 0.0
    bar.update(2, {"loss": 1.0})
    assert drawn_lines(stream.getvalue())[-1].split(" - ")[1].startswith("ETA: ") and \
        "--" not in drawn_lines(stream.getvalue())[-1]
