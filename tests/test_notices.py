"""The dashboard's notice panel: repeats collapse, warnings outlive info lines, time order."""

from __future__ import annotations

from thermalcount.runtime.notices import Notices


def _texts(notices, room=4):
    return [line.split(" ", 1)[1] for line in notices.lines(room)]


def test_a_repeat_differing_only_in_numbers_moves_to_the_bottom_with_a_count():
    notices = Notices()
    notices.append("exit at frame 10 with occupancy already 0", stamp=1.0)
    notices.append("sensor read failed", stamp=2.0)
    notices.append("exit at frame 52 with occupancy already 0", stamp=3.0)
    assert _texts(notices) == ["sensor read failed", "exit at frame 52 with occupancy already 0 (x2)"]
    assert len(notices) == 2


def test_a_warning_and_an_info_line_with_the_same_words_stay_apart():
    notices = Notices()
    notices.append("bridge 1 answers", stamp=1.0)
    notices.append("bridge 2 answers", warning=True, stamp=2.0)
    assert _texts(notices) == ["bridge 1 answers", "bridge 2 answers"]


def test_warnings_outlive_chatter_when_the_panel_is_full():
    notices = Notices(keep=3)
    notices.append("bridge out", warning=True, stamp=0.0)
    for index, word in enumerate(["alpha", "beta", "gamma", "delta"]):
        notices.append(f"info {word}", stamp=1.0 + index)
    # Kept: the warning and the two newest info lines, in the order they came.
    assert _texts(notices) == ["bridge out", "info gamma", "info delta"]
    # A panel of two lines shows the warning first, then the newest info line.
    assert _texts(notices, room=2) == ["bridge out", "info delta"]


def test_only_warnings_drop_the_oldest_warning():
    notices = Notices(keep=2)
    for index, word in enumerate(["one", "two", "three"]):
        notices.append(f"warning {word}", warning=True, stamp=float(index))
    assert _texts(notices) == ["warning two", "warning three"]
