"""Progress off a terminal: nothing for short work, plain lines (no carriage returns) for long work."""
import io

from deeppainter import progress as progress_lib


def test_short_work_in_a_log_prints_nothing(capsys):
    bar = progress_lib.progress(range(3), desc="decoding", unit="img")  # pytest's stderr is no terminal
    assert isinstance(bar, progress_lib.LogLines)
    assert list(bar) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_long_work_in_a_log_prints_one_line_per_interval_and_a_last_one():
    stream = io.StringIO()
    with progress_lib.LogLines(total=4, desc="encoding", unit="img", interval=0.0, stream=stream) as bar:
        bar.update(2)
        bar.update(2)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split(" (")[0] for line in lines] == ["encoding: 2/4 img so far", "encoding: 4/4 img so far",
                                                       "encoding: 4/4 img done"]


def test_disabled_progress_is_silent(capsys):
    assert list(progress_lib.progress([1, 2], enabled=False)) == [1, 2]
    assert capsys.readouterr().err == ""
