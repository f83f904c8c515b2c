"""Frame times the counter can trust: finite and strictly increasing.

The counter measures everything in seconds between frames (how long a state lasted, how
long the view has been empty), so one NaN or one step back in the clock silently breaks
every comparison after it. A recording's timestamps can be NaN or absurd (a damaged file,
an import with a bad time column), constant or reversed (a converter that wrote them so),
and a live Pi's wall clock steps backwards when NTP corrects it (a Pi has no real-time
clock). Rather than count wrongly, each bad time is replaced:

* a time that is not finite, or further than ~3000 years from 1970, or a lone frame out of
  line with both neighbours (a spike), is taken as the previous frame's time + 1 / fps;
* a time that goes back a second or more, or a clock that stands still for a second's worth
  of frames, is a broken clock: from there on, times keep their own spacing but start
  1 / fps after the previous frame (a constant offset). A smaller step back or a tie (two
  frames read within the clock's resolution, as a re-initialised sensor delivers them) keeps
  the previous frame's time and shifts nothing.

Gaps forward stay: a recording appended to hours later, a sensor outage, are real time.
:attr:`TimeGuard.repaired` counts the frames whose time was replaced and
:attr:`TimeGuard.first_repaired` names the first, for one warning.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

#: Seconds from 1970 beyond which a timestamp is taken as garbage (~ year 5000).
ABSURD_SECONDS = 1e11
#: A clock that goes back less than this, or stands still for fewer seconds' worth of frames,
#: is read as ties (frames read within its resolution), not as a broken clock.
TIE_SECONDS = 1.0


class TimeGuard:
    """Repairs the frame times of one stream, chunk by chunk (offline) or frame by frame (live)."""

    def __init__(self, fps: float):
        self.step = 1.0 / float(fps) if fps and np.isfinite(fps) and fps > 0 else 0.1
        self.repaired = 0
        self.first_repaired: Optional[int] = None
        self._offset = 0.0  # added to raw times since the last step of the clock
        self._last_raw: Optional[float] = None  # raw time of the last good frame
        self._last_out: Optional[float] = None  # time given to the last frame
        self._stalled = 0  # frames in a row whose time did not pass the last good one

    # -- offline: a chunk at a time ------------------------------------------------------
    def chunk(self, times: np.ndarray, start_frame: int = 0) -> np.ndarray:
        """``times`` of frames ``start_frame...``, repaired (the same array when nothing was wrong)."""
        times = np.asarray(times, dtype=np.float64)
        if not len(times):
            return times
        if self._fits(times):  # the usual case: one vectorised look, no copy
            out = times + self._offset if self._offset else times
            self._last_raw, self._last_out, self._stalled = float(times[-1]), float(out[-1]), 0
            return out
        suspect = self._spikes(times)
        out = np.empty_like(times)
        for k, raw in enumerate(times.tolist()):
            out[k] = self._one(raw, start_frame + k, bool(suspect[k]))
        return out

    # -- live: one frame -----------------------------------------------------------------
    def one(self, time: float, index: int) -> float:
        """The time to use for frame ``index`` read at ``time``."""
        if (self._last_raw is not None and self._last_out is not None and time > self._last_raw
                and time < ABSURD_SECONDS and time + self._offset > self._last_out):
            self._last_raw = time
            self._last_out = time + self._offset
            self._stalled = 0
            return self._last_out
        return self._one(time, index, False)

    def warning(self, where: str = "frame") -> Optional[str]:
        """One line for the user, or None when every time was good."""
        if not self.repaired:
            return None
        return (f"{self.repaired} frame time(s) were missing, absurd or went backwards (first: {where} "
                f"{self.first_repaired}); they were taken from the frame rate ({1 / self.step:g} FPS) "
                "so the count stays right")

    # -- the rules -------------------------------------------------------------------------
    def _fits(self, times: np.ndarray) -> bool:
        """Every time finite, sane, increasing, and after the previous chunk's."""
        if not (np.all(np.abs(times) < ABSURD_SECONDS) and (len(times) < 2 or np.all(np.diff(times) > 0))):
            return False  # NaN fails the first test
        first = float(times[0])
        return self._last_raw is None or (first > self._last_raw and first + self._offset > self._last_out)

    @staticmethod
    def _spikes(times: np.ndarray) -> np.ndarray:
        """Frames out of line with both neighbours, whose neighbours agree with each other."""
        suspect = np.zeros(len(times), bool)
        if len(times) >= 3:
            before, here, after = times[:-2], times[1:-1], times[2:]
            with np.errstate(invalid="ignore"):
                neighbours_agree = after > before
                suspect[1:-1] = neighbours_agree & ((here > after) | (here < before))
        return suspect

    def _one(self, raw: float, index: int, suspect: bool) -> float:
        sane = not suspect and abs(raw) < ABSURD_SECONDS  # NaN is not < anything
        if self._last_out is None:  # the first frame: nothing to compare with
            out = raw if sane else 0.0
            if not sane:
                self._note(index)
            else:
                self._last_raw = raw
            self._last_out = out
            return out
        if not sane:
            self._note(index)
            self._last_out += self.step
            return self._last_out
        if self._last_raw is not None and raw <= self._last_raw:
            self._stalled += 1
            # Two frames read within the clock's resolution, or a frame stamped a little late
            # (a re-initialised sensor delivers its first frames back to back): a tie, not a
            # broken clock. A clock that has not moved for a second of frames, or went back a
            # second or more, is broken: from here on times follow the frame rate.
            if self._last_raw - raw < TIE_SECONDS and self._stalled * self.step < TIE_SECONDS:
                return self._last_out
            self._note(index)
            self._offset = self._last_out + self.step - raw
        else:
            self._stalled = 0
            if self._last_raw is None or raw + self._offset <= self._last_out:
                # After frames whose times were taken from the frame rate: follow on from them.
                self._offset = self._last_out + self.step - raw
        self._last_raw = raw
        self._last_out = raw + self._offset
        return self._last_out

    def _note(self, index: int) -> None:
        self.repaired += 1
        if self.first_repaired is None:
            self.first_repaired = index
