"""``run --orientation auto``: find the travel axis while counting, then re-count what came before.

Until the travel axis is known (:class:`~thermalcount.model.travel_axis.TravelAxisFinder`, about
ten crossings), the live loop counts with the model's own axis, the frames as the sensor
gives them: the **provisional** count. Meanwhile :class:`AxisWatch` keeps

* the frames (pixels, time, index) and the provisional state of each, at most
  ``buffer_seconds`` (10 minutes: 1.5 MB at 10 FPS), trimmed only at a **quiet** moment, when
  the view had been empty long enough for every passage to be closed, so no crossing is cut
  in two (a hard limit of twice that drops frames even without one);
* the provisional events, **held**: they move the occupancy and the lights at once, but go
  to the event log, MQTT and the dashboard's event list only once they are final (their
  frames left the buffer, or the axis was decided);
* the counter's totals at every check (every ``CHECK_FRAMES`` frames), so a re-count can
  start from what was final when its first frame came, and the hand corrections (MQTT
  ``set``/``reset``) made meanwhile, so a re-count applies them where they happened.

When the finder decides:

* **the model's own axis**: the held events are final and published; nothing else changes.
* **the other axis**: the buffered frames are transposed and run through the model again
  from a fresh stream (its per-pixel background too), with a new counter that starts from
  the totals of the buffer's first frame. Its events replace the held ones: the log gets
  each crossing once, with its own frame and time, late. The new counter replaces the
  provisional one, so occupancy, entries and exits jump to the re-counted figures. The
  lights follow the new occupancy once: on if it rose above 0, the off-delay from now if it
  fell to 0. From then on the sensor's frames are transposed (one index per frame).

Either way the watch is dropped and the loop's per-frame path is what it is without it. The
buffer copy costs ~1 µs a frame before the decision; the finder runs every CHECK_FRAMES
frames (~0.15 ms per 32 frames here), outside the loop's latency figure.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from thermalcount.model.pattern import stream_fps
from thermalcount.model.travel_axis import AUTO, TRANSPOSE, AxisChoice, TravelAxisFinder, choose

#: Seconds of frames kept for a re-count.
BUFFER_SECONDS = 600.0
#: The finder gets the new frames, and the buffer is trimmed, every this many frames.
CHECK_FRAMES = 32
#: The provisional counter's warnings kept (the counter keeps as many between two drains).
MAX_WARNINGS = 100


class AxisWatch:
    """The buffer, the held events and the finder of one ``run`` (see the module docstring)."""

    def __init__(self, model, counter, fps: float, *, buffer_seconds: Optional[float] = None,
                 check_frames: int = CHECK_FRAMES):
        if buffer_seconds is None:
            buffer_seconds = BUFFER_SECONDS
        self.fps = stream_fps(fps)
        self.model_axis = model.travel_axis
        self.finder = TravelAxisFinder(self.fps)
        self.check_frames = int(check_frames)
        self.nominal = max(int(buffer_seconds * self.fps), self.check_frames)
        self.slack = max(self.nominal // 10, self.check_frames)
        self.capacity = 2 * self.nominal + 2 * self.check_frames
        self._pixels = np.empty((self.capacity, 8, 8), np.float32)
        self._times = np.empty(self.capacity, np.float64)
        self._index = np.empty(self.capacity, np.int64)
        self._states = np.empty(self.capacity, np.int32)
        self._empty = np.array([m.people == 0 for m in model.meanings], bool)
        #: A quiet moment: this many frames before it were all empty (the counter's empty
        #: debounce and one frame more: its passage was closed and its events emitted).
        self.quiet_frames = int(math.ceil(counter.tuning.empty_seconds * self.fps)) + 1
        self.size = 0  # frames in the buffer
        self.start = 0  # stream position (frames since the loop began) of the buffer's first
        self.seen = 0  # frames added
        self._fed = 0  # buffer frames the finder has seen
        self.held: list = []  # (position, CountEvent): provisional, not yet published
        self.warnings: list = []  # the provisional counter's, shown if its count stands
        self.corrections: list = []  # (position, occupancy): set by hand before that frame
        self.marks = {0: _totals(counter)}  # position -> the counter's totals after that many frames
        self.decided: Optional[AxisChoice] = None

    # -- per frame -------------------------------------------------------------------------
    def add(self, frame, state: int) -> bool:
        """Keep one frame and its provisional state; True when a check is due."""
        i = self.size
        self._pixels[i] = frame.pixels
        self._times[i] = frame.time
        self._index[i] = frame.index
        self._states[i] = state
        self.size = i + 1
        self.seen += 1
        return self.seen % self.check_frames == 0

    def hold(self, events, warnings=()) -> None:
        """Provisional events (and the counter's warnings with them), published once final."""
        position = self.seen  # emitted while the frame at this position was counted
        self.held.extend((position, event) for event in events)
        self.warnings = (self.warnings + list(warnings))[-MAX_WARNINGS:]

    def correct(self, occupancy: int) -> None:
        """The occupancy was set by hand before the next frame."""
        self.corrections.append((self.seen, int(occupancy)))

    # -- every CHECK_FRAMES frames ---------------------------------------------------------
    def check(self, counter) -> tuple:
        """Feed the finder the new frames; trim the buffer. Returns (choice or None, events
        that became final by the trim)."""
        self.marks[self.seen] = _totals(counter)
        if self._fed < self.size:
            self.finder.add(self._pixels[self._fed:self.size])
            self._fed = self.size
        finding = self.finder.finding
        if finding.axis is not None:
            self.decided = choose(AUTO, self.model_axis, finding)
            return self.decided, []
        return None, self._trim()

    def status(self) -> str:
        """What the dashboard shows while the axis is being found."""
        finding = self.finder.finding
        return (f"finding… {min(finding.moves, finding.needed)}/{finding.needed} moves of a warm blob; "
                f"counting along the model's {self.model_axis} meanwhile")

    def release_all(self) -> tuple:
        """(every held event, the held warnings): the provisional count stands."""
        events, warnings = [event for _, event in self.held], self.warnings
        self.held, self.warnings = [], []
        return events, warnings

    def recount(self, model, old_counter):
        """Re-count the buffered frames transposed (the other axis). Returns (counter, events).

        Restarts ``model``'s stream: it goes on from the buffer's last frame afterwards.
        """
        from thermalcount.runtime.counter import Counter

        counter = Counter(old_counter.meanings, flip=old_counter.flip, warn_clamped=old_counter.warn_clamped,
                          **dataclasses.asdict(old_counter.tuning))
        entries, exits, occupancy = self.marks[self.start]
        counter.entries, counter.exits = entries, exits
        counter.set_occupancy(occupancy)
        model.start_stream(self.fps)
        n = self.size
        states = model.infer_states(TRANSPOSE.apply(self._pixels[:n])) if n else np.empty(0, np.int64)
        times, index = self._times[:n], self._index[:n]
        # process() numbers frames from start_frame on: cut where the sensor skipped frames,
        # and where the occupancy was set by hand (applied between the same two frames).
        cuts = {int(c) for c in np.flatnonzero(np.diff(index) != 1) + 1}
        settings = {}
        for position, value in self.corrections:
            relative = position - self.start
            if 0 <= relative <= n:
                cuts.add(relative)
                settings[relative] = value
        events = []
        bounds = sorted(cuts | {0, n})
        for a, b in zip(bounds, bounds[1:]):
            if a in settings:
                counter.set_occupancy(settings[a])
            events.extend(counter.process(times[a:b], states[a:b], start_frame=int(index[a])))
        if n in settings:  # set by hand after the last buffered frame
            counter.set_occupancy(settings[n])
        self.held, self.warnings = [], []
        return counter, events

    def _trim(self) -> list:
        """Drop the oldest frames at a quiet moment once there are more than ``nominal``."""
        if self.size <= self.nominal + self.slack:
            return []
        end = self.start + self.size
        candidates = sorted(m for m in self.marks if end - self.nominal <= m < end)
        if not candidates:
            return []
        busy = np.concatenate(([0], np.cumsum(~self._empty[self._states[:self.size]])))
        cut = None
        for m in candidates:
            relative = m - self.start
            if relative >= self.quiet_frames and busy[relative] == busy[relative - self.quiet_frames]:
                cut = m
                break
        if cut is None:
            if self.size + self.check_frames < self.capacity:
                return []  # wait for a quiet moment
            cut = candidates[0]  # nobody left the view for 10 minutes: cut anyway
        drop = cut - self.start
        keep = self.size - drop
        for array in (self._pixels, self._times, self._index, self._states):
            array[:keep] = array[drop:self.size]
        self.size, self.start, self._fed = keep, cut, max(self._fed - drop, 0)
        self.marks = {m: totals for m, totals in self.marks.items() if m >= cut}
        self.corrections = [(p, v) for p, v in self.corrections if p >= cut]
        final = [event for position, event in self.held if position < cut]
        self.held = [(position, event) for position, event in self.held if position >= cut]
        return final


def _totals(counter) -> tuple:
    return counter.entries, counter.exits, counter.occupancy


__all__ = ["AxisWatch", "BUFFER_SECONDS", "CHECK_FRAMES"]
