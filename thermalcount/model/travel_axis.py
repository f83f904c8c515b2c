"""The travel axis from the frames themselves: which array axis people walk along.

Two ways, both numpy only (no torch, no scikit-learn: this runs on the Pi):

* :func:`find_travel_axis` is what ``train`` uses on a sample of raw frames: over the frames
  that show a warm blob, the blob's heat-weighted centre varies more along the direction
  people walk than across it.
* :class:`TravelAxisFinder` is what ``count`` and ``run`` use when no ``--orientation`` is
  given (``auto``). It works on a frame **stream**: each pixel's slow background is removed
  first (:class:`~thermalcount.model.pattern.PatternTracker`, 60 s), so the room's fixed
  pattern and a warm object that was there from the start are not blobs at all. Then it
  looks at how the blob's centre **moves**: between two frames ``LAG_SECONDS`` (0.5 s)
  apart that both show a blob, a **move** is a displacement of at least ``MIN_MOVE_PX``
  (1.5 pixels; a walker's median move is 2-3). A person walking through moves the centre
  along the travel axis and hardly across; someone standing or swaying makes few moves; a
  static warm thing put down while the stream runs (a blob until the background learns
  it, minutes) jitters by tenths of a pixel, and its rare jumps, as its pixels cross the
  margin while it fades into the background, run along its length. The mean square of the
  moves along rows and along columns decides. ``benchmarks/travel_axis.py`` measured on the
  simulated families at 10 and 1 FPS: along the travel axis it was 15-470x the one across,
  5-10x for two people passing each other; a faint bar of warm pixels put down mid-stream
  made 13 moves in 10 minutes. The finder decides only with enough evidence:
  ``MIN_MOVING_SECONDS`` x fps moves (150 at 10 FPS, 15 at 1 FPS: six to ten crossings) and
  one axis ``MIN_RATIO`` (3) times the other. Before that it is undecided and the callers
  keep the model's own axis. (The variance of the centre itself, train's measure, came
  down to 1.4x for lingering people, and on raw frames it picked the wrong axis in one
  simulated warm-object room.)

Turning a columns stream into the rows a model expects is a transpose (``frame.T``, the same
as ``--orientation rotate=90,mirror=horizontal``): it keeps the direction convention, "in"
is still toward increasing index along the travel axis, so ``--flip`` means what it meant.
Which way along the axis people go in cannot be told from the frames; ``--flip`` stays the
user's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from thermalcount.errors import UsageError
from thermalcount.model.pattern import PatternTracker, stream_fps
from thermalcount.sensors.conversions import Orientation, parse_orientation

BLOB_MARGIN_C = 1.5  # °C above a raw frame's median for train's travel-axis estimate
#: The stream finder's blob: pixels this much (°C) above the frame's median once the
#: background is removed (the noise left is ~0.25 °C: 4 standard deviations), this much warmth
#: (°C x pixels) in all. At 1.5 and 3 people in a warm room (2 °C above it) were rarely a blob;
#: at 0.75 an empty room began to show moves.
MOVE_MARGIN_C = 1.0
MIN_BLOB_HEAT = 2.0
#: A move: the blob's centre, between two frames this far apart that both show a blob, has
#: moved at least this many pixels.
LAG_SECONDS = 0.5
MIN_MOVE_PX = 1.5
#: Evidence the stream finder needs: this many seconds x fps moves, and the larger mean
#: square (along rows or columns) at least this times the smaller.
MIN_MOVING_SECONDS = 15.0
MIN_RATIO = 3.0
#: Time constant of the finder's own per-pixel background (the default model's too).
PATTERN_SECONDS = 60.0
#: The orientation that turns a columns stream into rows and back: a transpose.
TRANSPOSE = Orientation(rotate=90, mirror="horizontal")
#: The ``--orientation`` value that asks for the axis to be found (count and run).
AUTO = "auto"


# ------------------------------------------------------------------------ blob centres


def warmth(frames_c: np.ndarray, margin: float) -> np.ndarray:
    """(n, 8, 8) °C -> non-negative warmth above each frame's median + margin."""
    median = np.median(frames_c.reshape(len(frames_c), -1), axis=1)[:, None, None]
    return np.maximum(frames_c - median - margin, 0.0)


def blob_centres(frames_c: np.ndarray, margin: float = BLOB_MARGIN_C) -> tuple:
    """(rows, columns, heat) of the heat-weighted centre of each frame (NaN where no heat)."""
    warm = warmth(frames_c.reshape(-1, 8, 8), margin)
    heat = warm.sum(axis=(1, 2))
    index = np.arange(8.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = (warm.sum(axis=2) * index).sum(axis=1) / heat
        cols = (warm.sum(axis=1) * index).sum(axis=1) / heat
    return rows, cols, heat


def find_travel_axis(frames_c: np.ndarray, min_heat: float = 3.0) -> tuple:
    """(axis, evidence) from a sample of raw °C frames; axis is ``rows`` or ``columns``.

    What ``train`` uses (:mod:`thermalcount.training.train` imports it from here). Static warm objects
    add the same (zero) variance to both axes within a room, so they do not tip the balance;
    people walking do.
    """
    rows, cols, heat = blob_centres(frames_c)
    person = heat >= min_heat
    evidence = {"frames_with_blob": int(person.sum())}
    if person.sum() < 10:
        evidence["reason"] = "too few frames with a warm blob; assumed rows"
        return "rows", evidence
    var_rows, var_cols = float(np.var(rows[person])), float(np.var(cols[person]))
    evidence.update({"blob_variance_rows": round(var_rows, 3), "blob_variance_columns": round(var_cols, 3)})
    return ("rows" if var_rows >= var_cols else "columns"), evidence


# ------------------------------------------------------------------- the stream finder


@dataclass(frozen=True)
class AxisFinding:
    """What :class:`TravelAxisFinder` has seen so far."""

    axis: Optional[str]  # "rows", "columns", or None: not enough evidence yet
    moves: int  # moves of the warm blob's centre seen (see the module docstring)
    needed: int  # moves needed before deciding
    step_rows: float  # mean square of the moves along rows (px²), NaN: no moves
    step_columns: float
    frames: int  # frames looked at

    @property
    def ratio(self) -> float:
        """The larger mean squared step over the smaller (inf when the smaller is 0)."""
        high, low = max(self.step_rows, self.step_columns), min(self.step_rows, self.step_columns)
        if not (math.isfinite(high) and high > 0):
            return float("nan")
        return high / low if low > 0 else float("inf")

    def describe(self) -> str:
        """The evidence in a few words, for the stderr line, the dashboard and the log."""
        if not self.moves:
            return f"no moving warm blob in {self.frames} frames"
        numbers = (f"the warm blob moved {self.step_rows:.2f} px² along rows, {self.step_columns:.2f} "
                   f"along columns, mean square of {self.moves} moves over {LAG_SECONDS:g} s")
        if self.axis is not None:
            return numbers
        if self.moves < self.needed:
            return f"{numbers}; {self.needed} needed"
        return f"{numbers}; not {MIN_RATIO:g}x apart"

    def to_json(self) -> dict:
        def number(value):
            return round(float(value), 4) if math.isfinite(value) else None
        return {"frames": int(self.frames), "moves": int(self.moves), "moves_needed": int(self.needed),
                "move_rows": number(self.step_rows), "move_columns": number(self.step_columns)}


class TravelAxisFinder:
    """Finds the travel axis from one or more frame streams (see the module docstring).

    ``add(frames)`` takes (n, 8, 8) °C frames in stream order, any number at a time (the
    same stream in any pieces gives the same finding); ``start_stream()`` begins a new
    stream (a new background; no move across the gap). ``finding`` says what is known;
    ``finding.axis`` is None until decided.
    """

    def __init__(self, fps: float = 10.0, *, min_moving_seconds: float = MIN_MOVING_SECONDS,
                 min_ratio: float = MIN_RATIO, pattern_seconds: float = PATTERN_SECONDS):
        self.fps = stream_fps(fps)
        self.needed = max(int(math.ceil(min_moving_seconds * self.fps)), 2)
        self.min_ratio = float(min_ratio)
        self.pattern_seconds = float(pattern_seconds)
        self.lag = max(int(math.floor(LAG_SECONDS * self.fps + 0.5)), 1)  # 5 frames at 10 FPS, 1 at 1 FPS
        self.moves = 0
        self.frames = 0
        self._sum_rows = 0.0
        self._sum_columns = 0.0
        self.start_stream()

    def start_stream(self) -> None:
        self._tracker = PatternTracker(self.pattern_seconds, self.fps)
        # The blob centres of the stream's last `lag` frames (NaN: no blob), for the moves
        # that end in the next frames.
        self._tail = np.empty((2, 0))

    def add(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames, np.float32).reshape(-1, 8, 8)
        if not len(frames):
            return
        self.frames += len(frames)
        corrected = self._tracker.correct(frames)
        with np.errstate(invalid="ignore"):
            rows, cols, heat = blob_centres(corrected, MOVE_MARGIN_C)
            blob = heat >= MIN_BLOB_HEAT  # NaN (a broken frame): no blob
        centres = np.concatenate((self._tail, np.where(blob, np.stack((rows, cols)), np.nan)), axis=1)
        lag = self.lag
        if centres.shape[1] > lag:
            d_rows, d_cols = centres[:, lag:] - centres[:, :-lag]
            with np.errstate(invalid="ignore"):
                move = d_rows ** 2 + d_cols ** 2 >= MIN_MOVE_PX ** 2  # NaN (no blob at an end): False
            if move.any():
                self.moves += int(move.sum())
                self._sum_rows += float((d_rows[move] ** 2).sum())
                self._sum_columns += float((d_cols[move] ** 2).sum())
        self._tail = centres[:, -lag:]

    @property
    def finding(self) -> AxisFinding:
        if self.moves:
            step_rows, step_columns = self._sum_rows / self.moves, self._sum_columns / self.moves
        else:
            step_rows = step_columns = float("nan")
        axis = None
        if self.moves >= self.needed:
            high, low = max(step_rows, step_columns), min(step_rows, step_columns)
            if high > 0 and high >= self.min_ratio * low:
                axis = "rows" if step_rows > step_columns else "columns"
        return AxisFinding(axis, self.moves, self.needed, step_rows, step_columns, self.frames)


# --------------------------------------------------------------- the --orientation setting


def orientation_setting(text: Union[str, Orientation, None]) -> Optional[Orientation]:
    """``--orientation`` of count and run: None for ``auto`` (find the travel axis from the
    frames), else the orientation to apply (``none`` or ``rotate=0``: the frames as they
    are). Raises UsageError (one line) for anything else."""
    if isinstance(text, str) and text.strip().lower() == AUTO:
        return None
    try:
        return parse_orientation(text)
    except UsageError as error:
        raise UsageError(f"{error}; or auto to find the travel axis from the frames") from None


def stored_orientation(text: Union[str, Orientation, None]) -> Orientation:
    """``--orientation`` of record and import: an orientation, never ``auto``."""
    if isinstance(text, str) and text.strip().lower() == AUTO:
        raise UsageError("--orientation auto is for count and run; frames are stored as the source "
                         "gives them or turned with e.g. rotate=90,mirror=horizontal")
    return parse_orientation(text)


@dataclass(frozen=True)
class AxisChoice:
    """How frames reach the model: the setting, what was found and the orientation applied."""

    setting: str  # "auto", or the orientation given (its canonical text)
    model_axis: str
    orientation: Orientation  # applied to every frame before the model
    finding: Optional[AxisFinding] = None  # auto only

    @property
    def auto(self) -> bool:
        return self.setting == AUTO

    @property
    def found(self) -> Optional[str]:
        return None if self.finding is None else self.finding.axis

    def describe(self) -> str:
        """One line: what the travel axis is, how it was found and what is done to the frames."""
        if not self.auto:
            if self.orientation.is_identity:
                return f"travel axis: the model's {self.model_axis}; frames as they are (--orientation {self.setting})"
            return (f"travel axis: the model's {self.model_axis}; frames turned {self.orientation} "
                    f"(--orientation {self.setting})")
        finding = self.finding
        if finding is None or finding.axis is None:
            why = "no frames" if finding is None else finding.describe()
            return (f"travel axis: not found from the frames ({why}); counting along the model's "
                    f"{self.model_axis} with the frames as they are")
        head = f"travel axis: {finding.axis} (found from the frames: {finding.describe()})"
        if finding.axis == self.model_axis:
            return f"{head}; the model's own, frames used as they are (as --orientation none)"
        return (f"{head}; frames transposed to the model's {self.model_axis} "
                f"(as --orientation {TRANSPOSE})")

    def to_json(self) -> dict:
        return {"setting": self.setting, "model_axis": self.model_axis, "found": self.found,
                "orientation": str(self.orientation),
                "evidence": None if self.finding is None else self.finding.to_json()}


def choose(setting: Union[str, Orientation, None], model_axis: str,
           finding: Optional[AxisFinding] = None) -> AxisChoice:
    """The :class:`AxisChoice` for a setting (``auto`` uses ``finding``)."""
    given = orientation_setting(setting)
    if given is not None:
        return AxisChoice("none" if given.is_identity else str(given), model_axis, given)
    if finding is not None and finding.axis is not None and finding.axis != model_axis:
        return AxisChoice(AUTO, model_axis, TRANSPOSE, finding)
    return AxisChoice(AUTO, model_axis, Orientation(), finding)


__all__ = ["AUTO", "AxisChoice", "AxisFinding", "BLOB_MARGIN_C", "MIN_BLOB_HEAT", "MOVE_MARGIN_C", "TRANSPOSE",
           "TravelAxisFinder", "blob_centres", "choose", "find_travel_axis",
           "orientation_setting", "stored_orientation", "warmth"]
