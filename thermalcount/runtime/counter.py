"""The counting state machine: model states over time -> "in"/"out" events and occupancy.

Pure: no clock, no thread, no I/O. Time comes in with every frame, so the same code counts a
live 10 FPS stream, a 1 FPS sensor and a million-frame recording. docs/counting.md draws the
state sequences; the short version:

1. **Debounce (per state, by time).** A state counts as *seen* once it has lasted
   ``min_state_seconds`` (empty: ``empty_seconds``), measured from its first frame to the
   frame that follows. Shorter flickers are ignored. Measuring time, not frames, keeps one
   rule right at 10 FPS (a 1-frame flicker lasts 0.1 s) and at 1 FPS (every frame lasts 1 s).
2. **Passages and tracks.** Seen non-empty states between two seen empties form a *passage*:
   somebody walked into the view and everybody left it again. Each seen state shows one
   blob at a position along the travel axis, or two blobs apart; the passage follows them as
   tracks of people (:mod:`thermalcount.runtime.tracks`): a track that ends on the other
   side than it began is one crossing, counted when the track ends (it leaves the view, the
   next person takes its place, or the passage closes). Sides: ``A`` (position <=
   ``low_side_max``, the low-index edge), ``B`` (>= ``high_side_min``), the middle between.
3. **No heat.** How much heat a state holds never says "two people": a real person in
   mid-view carries 2.6x the heat of the same person at the edge. Two people are two
   blobs (the ``apart`` state), or a second track that follows the first.
4. **Jump back.** When one blob jumps from the far side straight back to the side its track
   came from (by ``jump_back_min_gap`` of the view or more, no middle between), the first
   person has left and a new one has come in.
5. **Static warm things.** A person state that fills most of the last minute (a leaky sum
   of its seen time reaches ``static_seconds``) is not a person - people cross in seconds,
   lingerers stand a few - but a warm object, or a room whose empty scene the model mistakes
   for a faint person. From then on that state counts as empty (and a two-person state as
   one person: the thing is one of the two blobs); the passage in progress is re-read that
   way, so the crossings it hid are counted. A truly empty view for 10 s undoes this.

"in" is A->B (toward increasing index along the travel axis), "out" B->A; ``flip`` swaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.runtime.tracks import SIDE_A as _SIDE_A
from thermalcount.runtime.tracks import SIDE_B as _SIDE_B
from thermalcount.runtime.tracks import SIDE_M as _SIDE_M
from thermalcount.runtime.tracks import PassageTracks, side_of
from thermalcount.runtime.warm_objects import WarmObjects


class CountEvent(NamedTuple):
    """One counted crossing: the frame and time it happened, direction, occupancy after it."""

    frame: int
    time: float
    direction: str  # "in" | "out"
    occupancy: int

    def to_json(self) -> dict:
        """The event as `count --json` and `run --events-out` write it (plain JSON types)."""
        return {"frame": int(self.frame), "time": float(self.time), "direction": self.direction,
                "occupancy": int(self.occupancy)}


@dataclass(frozen=True)
class CounterTuning:
    """Every knob of the counter, with the reason for its default."""

    #: A person state must last this long to be believed: rejects single-frame flicker at
    #: 10 FPS (0.1 s) while a 1 FPS frame (1 s) always passes. Crossings take 1.5-2 s.
    min_state_seconds: float = 0.08
    #: A two-people-apart state must last this long (two frames at 10 FPS, one at 1 FPS).
    #: Two separate blobs are geometry a lone person never shows (0 of ~3,000 real frames),
    #: unlike "more heat", which needed 0.25 s; a back-to-back pair shows it only briefly.
    two_seconds: float = 0.15
    #: A state of the faint-edge rule (someone just outside the view, model/rules.py) must
    #: last this long: two frames at 10 FPS, where one noisy frame could fake an edge before
    #: a crossing and make it look like it came from the far side; one frame at 1 FPS,
    #: where that one frame is all a crossing may show of its start or end.
    edge_seconds: float = 0.15
    #: The view must be empty this long to end a passage: bridges a faint person missed for
    #: several frames (a warm room: seen at the edges, lost in the middle). People closer
    #: together than this are kept apart by the jump-back split; 2 s merged busy doorways,
    #: 1 s cost rooms with a flickering warm object (docs/model.md).
    empty_seconds: float = 0.6
    #: ... and for this many frames: at 1 FPS one empty frame (1 s) is a walker the model
    #: missed in mid-view between two frames that show their two sides, not someone gone.
    empty_frames: int = 2
    #: Debounce all two-people states together (one run while any of them follows another).
    #: Off: the apart states say where the pair sits, and that changes as the two walk (the
    #: pair toward the low end, then spanning the view, then toward the high end); one merged
    #: run showed only where it began, and a pair following each other was counted when the
    #: second crossed (CI suite 0.988 merged, 0.992 not). Useful for old models whose
    #: two-people states flicker between neighbouring positions.
    merge_two_states: bool = False
    #: Positions at or below this are side A (the low-index edge).
    low_side_max: float = 0.4
    #: Positions at or above this are side B (the high-index edge).
    high_side_min: float = 0.6
    #: A lone person first seen in the middle who then leaves on one side only (1 FPS, or an
    #: edge the model misses) is counted as coming from the other side.
    infer_middle_entry: bool = True
    #: The mirror image, for a passage that begins with a faint-edge state (frame rules:
    #: someone just outside the view): a lone person seen at the edge, then in the middle,
    #: then gone, is counted as leaving on the other side. At 1 FPS a crossing often shows
    #: just that. Not for other states: at 10 FPS "low, middle, gone" is flicker or a
    #: person the model lost, and a walker takes several frames to leave from the middle.
    infer_middle_exit: bool = True
    #: End a lone track when it jumps from the far side straight back to its entry side:
    #: the first person left as the next came in, with no empty frame between them.
    split_on_jump_back: bool = True
    #: The smallest position step (0..1 of the view) that counts as a jump back.
    jump_back_min_gap: float = 0.5
    #: A person state seen for this many seconds of roughly the last minute (a leaky sum
    #: with a 60 s time constant) is a warm object, not a person (0: never). A crossing
    #: spends well under a second in one state, a lingerer 2-8 s - but a doorway where people
    #: stop every few seconds fills one "middle" state for a third of the minute (16 s cut
    #: such crossings in two: lingering 0.935 at 16 s, 0.991 at 40 s). Models with a per-pixel
    #: background absorb warm objects themselves; this is the safety net meanwhile.
    static_seconds: float = 40.0

    def __post_init__(self):
        if min(self.min_state_seconds, self.empty_seconds, self.two_seconds, self.static_seconds,
               self.edge_seconds) < 0:
            raise ValueError("min_state_seconds, two_seconds, edge_seconds, empty_seconds and static_seconds "
                             "must be >= 0")
        if isinstance(self.empty_frames, bool) or not isinstance(self.empty_frames, int) or self.empty_frames < 1:
            raise ValueError("empty_frames must be a whole number >= 1")
        if not 0.0 <= self.jump_back_min_gap <= 1.0:
            raise ValueError("jump_back_min_gap must be between 0 and 1")
        if not 0.0 <= self.low_side_max < self.high_side_min <= 1.0:
            raise ValueError("need 0 <= low_side_max < high_side_min <= 1")


MAX_PENDING_WARNINGS = 100
#: Seen state changes one passage may hold (>= 1000 s of flicker at 10 FPS) before it is dropped.
MAX_PASSAGE_STATES = 10_000


class _Passage:
    __slots__ = ("runs", "tracks", "counted")

    def __init__(self, tracks: PassageTracks):
        self.runs: list = []  # (frame, time, state) of each seen non-empty state
        self.tracks = tracks
        self.counted: set = set()  # crossings already turned into events (a re-read skips them)


class Counter:
    """Count crossings from a stream of model states. See the module docstring."""

    def __init__(self, meanings, *, flip: bool = False, warn_clamped: bool = True, **tuning):
        self.tuning = CounterTuning(**tuning)
        self.flip = bool(flip)
        #: One warning per exit counted at occupancy 0 (False: only ``clamped`` counts them,
        #: for callers that report them in one line, like ``count``).
        self.warn_clamped = bool(warn_clamped)
        self.meanings = list(meanings)
        if not self.meanings:
            raise ModelError("the model has no states; re-export it")
        people, sides, positions, faint_edges = [], [], [], []
        for meaning in self.meanings:  # StateMeanings (a states list: contract.meanings_from_states)
            count, position = int(meaning.people), meaning.position
            faint_edges.append(meaning.rule == "faint edge")
            people.append(min(count, 2))
            sides.append(_SIDE_M if count == 0 else side_of(position, self.tuning.low_side_max,
                                                             self.tuning.high_side_min))
            positions.append(None if count == 0 or position is None else float(position))
        if not ({_SIDE_A, _SIDE_B} <= {s for s, p in zip(sides, people) if p == 1}):
            raise ModelError("the model's states have no one-person positions on both sides of "
                             "the door line, so no direction can be told; retrain or re-export it")
        self._people_list, self._positions = people, positions
        #: States of the faint-edge frame rule (someone just outside the view); not _edge_list.
        self._faint_edge_list = faint_edges
        #: Two people apart in the view: the apart rule's states (where the pair sits: "low",
        #: "both" or "high"), and clusters whose decoded frame has two humps (meanings: two
        #: people, no position). Other two-people states are old models' heat-based "two":
        #: read as one blob where they say, never as two people.
        self._apart_where = [m.apart for m in self.meanings]
        self._apart_list = [where is not None for where in self._apart_where]
        self._n_states = len(people)
        self._thresholds = [self.tuning.empty_seconds if p == 0 else self.tuning.edge_seconds if edge
                            else self.tuning.min_state_seconds if p == 1 else self.tuning.two_seconds
                            for p, edge in zip(people, faint_edges)]
        self._threshold_array = np.array(self._thresholds, np.float64)
        # Frames a run needs besides its time (the empty state: empty_frames; others: 1).
        self._min_frames = [max(1, self.tuning.empty_frames) if p == 0 else 1 for p in people]
        self._min_frames_array = np.array(self._min_frames, np.int64)
        # Debounce key of each state: one-person and empty states are themselves; every
        # two-people state shares one key, so a pair read as two-3, two-2, two-3 in three
        # frames is one run of "two people" (the states differ only in where the pair is).
        two_key = -1 if self.tuning.merge_two_states else None
        self._key_list = [two_key if p >= 2 and two_key is not None else index for index, p in enumerate(people)]
        self._key_array = np.array(self._key_list, np.int64)
        # A merged two-people run that began on another two-people state (an old model's
        # heat "two") stands for two people apart when any of its frames before it was
        # confirmed is an apart state: it is then seen as the first of them.
        self._apart_array = np.array(self._apart_list, bool)
        self._warnings: list = []
        self._dropped_warnings = 0
        self.reset()

    # ----------------------------------------------------------------------- public state
    def reset(self) -> None:
        """Forget everything: counts, occupancy, the open passage, the current state."""
        self.entries = 0
        self.exits = 0
        self._occupancy = 0
        #: How many exits were counted while occupancy was already 0.
        self.clamped = 0
        #: Frame of the first exit counted at occupancy 0, or None.
        self.first_clamped_frame: Optional[int] = None
        self._next_frame = 0
        self._last_time = -np.inf
        self._run_state: Optional[int] = None
        self._run_frame = 0
        self._run_time = 0.0
        self._run_deadline = 0.0
        self._run_confirmed = False
        self._run_apart: Optional[int] = None  # the first apart state among the open run's frames
        self._seen_state: Optional[int] = None
        self._seen_time = 0.0
        self._warm = WarmObjects(self.tuning.static_seconds)
        self._passage: Optional[_Passage] = None

    @property
    def occupancy(self) -> int:
        """People in the room: entries minus exits, never below 0."""
        return self._occupancy

    def set_occupancy(self, n: int) -> None:
        """Set the occupancy by hand (e.g. 0 at night). Counts and state are kept."""
        n = int(n)
        if n < 0:
            raise ValueError("occupancy cannot be negative")
        self._occupancy = n

    def drain_warnings(self) -> list:
        """Warnings not yet handed out, each once (e.g. occupancy clamped at 0). At most
        MAX_PENDING_WARNINGS are kept between calls; a last line says how many were dropped."""
        fresh, self._warnings = self._warnings, []
        if self._dropped_warnings:
            fresh.append(f"{self._dropped_warnings} more warning(s) not shown")
            self._dropped_warnings = 0
        return fresh

    def _warn(self, message: str) -> None:
        # Bounded: a counter that runs for months without anyone draining must not grow.
        if len(self._warnings) < MAX_PENDING_WARNINGS:
            self._warnings.append(message)
        else:
            self._dropped_warnings += 1

    @property
    def in_passage(self) -> bool:
        """True while somebody is being tracked in the view."""
        return self._passage is not None

    # ---------------------------------------------------------------------- frame input
    def update(self, time: float, state: int, frame: Optional[int] = None) -> list:
        """Feed one frame (its time in seconds, the model's state). Returns new events.

        ``frame`` is the frame's index in the stream (default: one more than the last).
        """
        state = int(state)
        if not 0 <= state < self._n_states:
            raise ValueError(f"state {state} is not one of the model's {self._n_states} states")
        if frame is None:
            frame = self._next_frame
        self._next_frame = frame + 1
        time = float(time)
        # A clock that steps back must not un-confirm anything: time never decreases here.
        if time < self._last_time:
            time = self._last_time
        self._last_time = time
        events: list = []
        if (self._run_state is not None and not self._run_confirmed and time >= self._run_deadline
                and frame - self._run_frame >= self._min_frames[self._run_state]):
            self._run_confirmed = True
            self._seen(self._shown(self._run_state, self._run_apart), self._run_frame, self._run_time, events)
        if self._run_state is None or self._key_list[state] != self._key_list[self._run_state]:
            self._run_state = state
            self._run_frame = frame
            self._run_time = time
            self._run_deadline = time + self._thresholds[state]
            self._run_confirmed = False
            self._run_apart = state if self._apart_list[state] else None
        elif self._run_apart is None and self._apart_list[state]:
            self._run_apart = state
        return events

    def _shown(self, state: int, apart: Optional[int]) -> int:
        """The state a confirmed run is seen as: its first, or its first apart state (__init__)."""
        if apart is None or self._apart_list[state]:
            return state  # an apart state shows itself: where its pair sits
        return apart

    def process(self, times, states, start_frame: Optional[int] = None) -> list:
        """Feed many frames at once; same result as calling :meth:`update` for each.

        Long stretches of one state cost nothing: the states are run-length encoded and the
        debounce is solved with ``searchsorted``; Python only sees the few seen-state
        changes. ``start_frame`` is the index of ``states[0]`` (default: continue).

        Why two paths: on a 300,000-frame simulated recording (2 cores, load ~3.5) this ran
        at 4.2 M frames/s against 1.9 M for :meth:`update` in a loop (``count``), while one
        frame costs 20.5 us here against 0.54 us in :meth:`update` (the live loop).
        tests/test_counter.py pins the two together: random streams cut anywhere, and the
        default model's states of simulated doorways.
        """
        states = np.asarray(states).astype(np.int64, copy=False).reshape(-1)
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        n = len(states)
        if len(times) != n:
            raise ValueError(f"{len(times)} times for {n} states")
        if n == 0:
            return []
        if states.min() < 0 or states.max() >= self._n_states:
            bad = int(states[(states < 0) | (states >= self._n_states)][0])
            raise ValueError(f"state {bad} is not one of the model's {self._n_states} states")
        base = self._next_frame if start_frame is None else int(start_frame)
        self._next_frame = base + n
        # Same clamping as update(): a running maximum seeded with the last time seen.
        times = np.maximum.accumulate(np.concatenate(([self._last_time], times)))[1:]
        self._last_time = float(times[-1])

        keys = self._key_array[states]
        starts = np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))
        ends = np.concatenate((starts[1:], [n]))
        run_states = states[starts]
        deadlines = times[starts] + self._threshold_array[run_states]
        # A run is confirmed by a frame after its first (after its first empty_frames: empty).
        earliest = starts + self._min_frames_array[run_states]
        confirmed_before = np.zeros(len(starts), bool)
        run_frames = base + starts
        run_times = times[starts]
        events: list = []

        apart_at = np.flatnonzero(self._apart_array[states])  # frames of this chunk with an apart state
        merged = self._run_state is not None and keys[0] == self._key_list[self._run_state]
        carried_apart = self._run_apart if merged else None

        def first_apart(run: int, before: int) -> Optional[int]:
            """The first apart state among run ``run``'s frames before ``before`` (None)."""
            if run == 0 and carried_apart is not None:
                return carried_apart
            k = int(np.searchsorted(apart_at, starts[run]))
            return int(states[apart_at[k]]) if k < len(apart_at) and apart_at[k] < before else None
        if merged:
            # The chunk continues the open run: its state, start, deadline and status carry over.
            run_states[0] = self._run_state
            deadlines[0] = self._run_deadline
            earliest[0] = max(0, self._run_frame + self._min_frames[self._run_state] - base)
            confirmed_before[0] = self._run_confirmed
            run_frames[0] = self._run_frame
            run_times[0] = self._run_time
        elif (self._run_state is not None and not self._run_confirmed and times[0] >= self._run_deadline
              and base - self._run_frame >= self._min_frames[self._run_state]):
            self._run_confirmed = True
            self._seen(self._shown(self._run_state, self._run_apart), self._run_frame, self._run_time, events)

        hit = np.maximum(np.searchsorted(times, deadlines, side="left"), earliest)
        # Confirmed inside this chunk: by a frame of the run or the first frame after it.
        limit = np.minimum(ends, n - 1)
        newly = (~confirmed_before) & (hit <= limit)
        seen = np.flatnonzero(newly)
        if len(seen):
            seen_states = run_states[seen]
            seen_keys = self._key_array[seen_states]
            previous = np.concatenate(([-2 if self._seen_state is None else self._key_list[self._seen_state]],
                                       seen_keys[:-1]))
            changed = seen[seen_keys != previous]
            seen_frames, seen_times = run_frames[changed].tolist(), run_times[changed].tolist()
            # Apart frames among each run's frames before the one that confirmed it: only
            # two-people runs that did not begin on an apart state need looking at.
            for run, state, frame, time in zip(changed.tolist(), run_states[changed].tolist(), seen_frames,
                                               seen_times):
                apart = None
                if self._people_list[state] >= 2 and not self._apart_list[state]:
                    apart = first_apart(run, int(hit[run]))
                self._seen(self._shown(state, apart), frame, time, events)

        last = len(starts) - 1
        self._run_state = int(run_states[last])
        self._run_frame = int(run_frames[last])
        self._run_time = float(run_times[last])
        self._run_deadline = float(deadlines[last])
        self._run_confirmed = bool(confirmed_before[last] or newly[last])
        self._run_apart = first_apart(last, n)
        return events

    def finish(self) -> list:
        """End of a finite stream: close the passage in progress as if the view emptied at
        the last frame. Returns its events. Not called by the live loop."""
        events: list = []
        if self._passage is not None:
            self._close(self._passage, self._next_frame - 1, self._last_time, events)
            self._passage = None
        return events

    # ---------------------------------------------------------------- passage logic
    def _seen(self, state: int, frame: int, time: float, events: list) -> None:
        """A state has lasted long enough to be believed (called once per change)."""
        if self._seen_state is not None and self._key_list[state] == self._key_list[self._seen_state]:
            return
        previous, since = self._seen_state, self._seen_time
        self._seen_state, self._seen_time = state, time
        if previous is not None:
            self._account(previous, time - since, frame, time, events)
        self._feed(state, frame, time, events)

    def _account(self, state: int, seconds: float, frame: int, time: float, events: list) -> None:
        """Book how long a seen state lasted; find static warm things (module docstring, 5)."""
        if not self._warm.book(state, self._people_list[state], seconds, time):
            return
        self._warn(f"state {state} was in view for most of the last minute up to frame {frame}; "
                   "taken for a warm object and counted as empty")
        # Re-read the passage in progress with that state as empty: the crossings it hid
        # are counted now (with their own frames and times).
        passage, self._passage = self._passage, None
        if passage is not None:
            for run_frame, run_time, run_state in passage.runs:
                self._feed(run_state, run_frame, run_time, events, counted=passage.counted)

    def _feed(self, state: int, frame: int, time: float, events: list, counted: frozenset = frozenset()) -> None:
        """The passage logic for one seen state. ``counted``: crossings counted before (a
        passage re-read after a static warm thing was found), not counted again."""
        people = self._warm.people(state, self._people_list[state])
        passage = self._passage
        if people == 0:
            if passage is not None:
                self._close(passage, frame, time, events, counted)
                self._passage = None
            return
        if passage is None:
            passage = self._passage = _Passage(self._new_tracks())
        if len(passage.runs) >= MAX_PASSAGE_STATES:
            # Not a person walking through: something warm stays in view and flickers (a
            # heater, a sleeping pet). Forget it rather than grow without bound.
            self._warn(f"something stayed in view with {len(passage.runs)} state changes up to "
                       f"frame {frame}; not counted (a warm object in view?)")
            passage = self._passage = _Passage(self._new_tracks())
        passage.runs.append((frame, time, state))
        where = self._apart_where[state] if people >= 2 else None
        if where is not None:
            crossed = passage.tracks.see_apart(where, frame, time)
        else:
            crossed = passage.tracks.see(self._positions[state], frame, time, self._faint_edge_list[state])
        self._emit_all(passage, crossed, events, counted)

    def _new_tracks(self) -> PassageTracks:
        t = self.tuning
        return PassageTracks(low_side_max=t.low_side_max, high_side_min=t.high_side_min,
                             jump_back_min_gap=t.jump_back_min_gap, split_on_jump_back=t.split_on_jump_back,
                             infer_middle_entry=t.infer_middle_entry, infer_middle_exit=t.infer_middle_exit)

    def _close(self, passage: _Passage, frame: int, time: float, events: list, counted=frozenset()) -> None:
        """Turn what is left of a finished passage into events. (frame, time): when it ended."""
        self._emit_all(passage, passage.tracks.close(frame, time), events, counted)

    def _emit_all(self, passage: _Passage, crossed: list, events: list, counted=frozenset()) -> None:
        # Several tracks may end at once (the view empties): the earliest crossing first, and
        # at the same frame the entry first, so an exit does not find the room at 0.
        for crossing in sorted(crossed, key=lambda c: (c.frame, (c.from_side == _SIDE_A) == self.flip)):
            key = (crossing.frame, crossing.from_side, crossing.to_side)
            if key in counted:
                continue
            self._emit(crossing.from_side, crossing.to_side, crossing.frame, crossing.time, events)
            passage.counted.add(key)

    def _emit(self, from_side: int, to_side: int, frame: int, time: float, events: list) -> None:
        inward = (from_side == _SIDE_A) != self.flip
        if inward:
            self.entries += 1
            self._occupancy += 1
            direction = "in"
        else:
            self.exits += 1
            direction = "out"
            if self._occupancy > 0:
                self._occupancy -= 1
            else:
                self.clamped += 1
                if self.first_clamped_frame is None:
                    self.first_clamped_frame = int(frame)
                if self.warn_clamped:
                    self._warn(f"exit at frame {frame} with occupancy already 0; "
                               "occupancy stays 0 (set it by hand if the room was not empty)")
        events.append(CountEvent(int(frame), float(time), direction, self._occupancy))


__all__ = ["Counter", "CountEvent", "CounterTuning"]
