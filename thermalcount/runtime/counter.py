"""The counting state machine: model states over time -> "in"/"out" events and occupancy.

Pure: no clock, no thread, no I/O. Time comes in with every frame, so the same code counts a
live 10 FPS stream, a 1 FPS sensor and a million-frame recording. docs/counting.md draws the
state sequences; the short version:

1. **Debounce (per state, by time).** A state counts as *seen* once it has lasted
   ``min_state_seconds`` (empty: ``empty_seconds``), measured from its first frame to the
   frame that follows. Shorter flickers are ignored. Measuring time, not frames, keeps one
   rule right at 10 FPS (a 1-frame flicker lasts 0.1 s) and at 1 FPS (every frame lasts 1 s).
2. **Passages.** Seen non-empty states between two seen empties form a *passage*: somebody
   walked into the view and everybody left it again. Each seen state of one person has a
   side from its position: ``A`` (position <= ``low_side_max``, the low-index edge), ``B``
   (position >= ``high_side_min``) or ``M`` (between, or unknown).
3. **Counting at the end of a passage.** One person: first side A, last side B -> one event
   A->B; same first and last side (lingering at the door line, turning back) -> nothing.
   One side and the middle: see ``infer_middle_entry`` and ``infer_middle_exit`` (1 FPS).
   Two people (a state with ``people >= 2`` was seen): first side != last side -> two events
   in that direction (one following another); same side -> one each way (passing).
4. **Split on a jump back.** When one person's position jumps straight from the far side back
   to the side the passage entered from, by at least ``jump_back_min_gap`` of the view (no
   middle in between), the first person has left and a new one has come in: the passage is
   closed and a new one starts. A smaller step (someone swaying on the door line between a
   state just before it and one just after it) is not a new person.
5. **Static warm things.** A person state that fills most of the last minute (a leaky sum
   of its seen time reaches ``static_seconds``) is not a person - people cross in seconds,
   lingerers stand a few - but a warm object, or a room whose empty scene the model mistakes
   for a faint person. From then on that state counts as empty (and a two-person state as
   one person: the thing is one of the two blobs); the passage in progress is re-read that
   way, so the crossings it hid are counted. A truly empty view for 10 s undoes this.

"in" is A->B (toward increasing index along the travel axis), "out" B->A; ``flip`` swaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple, Optional

import numpy as np

from thermalcount.errors import ModelError


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
    #: A two-person state must last this long: a one-frame "two" inside a lone person's
    #: crossing (a blob a little larger for a moment) must not count twice. Pairs stay
    #: in view together for 0.3 s and more.
    two_seconds: float = 0.25
    #: A state of the faint-edge rule (someone just outside the view, frame_rules.py) must
    #: last this long: two frames at 10 FPS, where one noisy frame could fake an edge before
    #: a crossing and make it look like it came from the far side; one frame at 1 FPS,
    #: where that one frame is all a crossing may show of its start or end.
    edge_seconds: float = 0.15
    #: The view must be empty this long to end a passage: bridges a faint person missed for
    #: several frames (a warm room: seen at the edges, lost in the middle). People closer
    #: together than this are kept apart by the jump-back split; 2 s merged busy doorways,
    #: 1 s cost rooms with a flickering warm object (docs/model.md).
    empty_seconds: float = 0.6
    #: Debounce all two-people states together (one run while any of them follows another):
    #: a faint or fast pair flickers between two-people states of neighbouring positions,
    #: none lasting two_seconds on its own.
    merge_two_states: bool = True
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
    #: Close a passage when one person jumps from the far side straight back to the entry
    #: side: the first left as the next came in, with no empty frame between them.
    split_on_jump_back: bool = True
    #: A passage whose first states (before the middle) or last states (after it) show
    #: both edges (positions within 0.3 of 0 and of 1) held two people passing each
    #: other: one "in" and one "out".
    opposite_edges_pass: bool = True
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
        if not 0.0 <= self.jump_back_min_gap <= 1.0:
            raise ValueError("jump_back_min_gap must be between 0 and 1")
        if not 0.0 <= self.low_side_max < self.high_side_min <= 1.0:
            raise ValueError("need 0 <= low_side_max < high_side_min <= 1")


TUNING_NAMES = tuple(f.name for f in fields(CounterTuning))
MAX_PENDING_WARNINGS = 100
#: Seen state changes one passage may hold (>= 1000 s of flicker at 10 FPS) before it is dropped.
MAX_PASSAGE_STATES = 10_000
#: Positions this close to 0 or 1 are "at an edge" for the passing rule.
EDGE_POSITION = 0.3
#: Time constant of the leaky sum of each state's seen time (static warm things).
STATIC_WINDOW_SECONDS = 60.0
#: A truly empty view for this long means a static warm thing has gone.
STATIC_CLEAR_SECONDS = 10.0
_SIDE_M, _SIDE_A, _SIDE_B = 0, 1, 2


class _Passage:
    __slots__ = ("runs", "first_two", "two_end", "last_was_two")

    def __init__(self):
        self.runs: list = []  # (people, side, frame, time, state) of each seen non-empty state
        self.first_two: Optional[tuple] = None  # (frame, time) the first two-person state began
        self.two_end: Optional[tuple] = None  # (frame, time) the last two-person state ended
        self.last_was_two = False

    @property
    def has_two(self) -> bool:
        """A two-person state was seen in this passage."""
        return self.first_two is not None


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
        for index, meaning in enumerate(self.meanings):
            get = meaning.get if isinstance(meaning, dict) else (lambda k, m=meaning: getattr(m, k, None))
            count = int(get("people"))
            position = get("position")
            rule = get("rule")  # StateMeaning: the test's name; a states-list entry: its parameters
            faint_edges.append((rule.get("test") if isinstance(rule, dict) else rule) == "faint edge")
            if count == 0:
                side = _SIDE_M
            elif position is None:
                side = _SIDE_M
            elif position <= self.tuning.low_side_max:
                side = _SIDE_A
            elif position >= self.tuning.high_side_min:
                side = _SIDE_B
            else:
                side = _SIDE_M
            people.append(min(count, 2))
            sides.append(side)
            positions.append(None if count == 0 or position is None else float(position))
        if not ({_SIDE_A, _SIDE_B} <= {s for s, p in zip(sides, people) if p == 1}):
            raise ModelError("the model's states have no one-person positions on both sides of "
                             "the door line, so no direction can be told; retrain or re-export it")
        self._people_list, self._sides_list, self._positions = people, sides, positions
        #: States of the faint-edge frame rule (someone just outside the view); not _edge_list.
        self._faint_edge_list = faint_edges
        #: Two-people states without a position: two people apart in the view (meanings).
        self._apart_list = [p >= 2 and pos is None for p, pos in zip(people, positions)]
        #: States at one edge of the view (someone just coming in or going out).
        self._edge_list = [p is not None and min(p, 1.0 - p) <= EDGE_POSITION for p in positions]
        self._n_states = len(people)
        self._thresholds = [self.tuning.empty_seconds if p == 0 else self.tuning.edge_seconds if edge
                            else self.tuning.min_state_seconds if p == 1 else self.tuning.two_seconds
                            for p, edge in zip(people, faint_edges)]
        self._threshold_array = np.array(self._thresholds, np.float64)
        # Debounce key of each state: one-person and empty states are themselves; every
        # two-people state shares one key, so a pair read as two-3, two-2, two-3 in three
        # frames is one run of "two people" (the states differ only in where the pair is).
        two_key = -1 if self.tuning.merge_two_states else None
        self._key_list = [two_key if p >= 2 and two_key is not None else index for index, p in enumerate(people)]
        self._key_array = np.array(self._key_list, np.int64)
        # A merged two-people run stands for two people apart when any of its frames before it
        # was confirmed is an "apart" state: it is then seen as this (apart) state.
        self._apart_array = np.array(self._apart_list, bool)
        self._apart_state = next((index for index, apart in enumerate(self._apart_list) if apart), None)
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
        self._run_apart = False  # an "apart" state among the open run's frames so far
        self._seen_state: Optional[int] = None
        self._seen_time = 0.0
        #: States currently taken for a static warm thing (they count as empty).
        self._static: set = set()
        self._presence: dict = {}  # state -> (leaky seen-seconds, time of last booking)
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
        if self._run_state is not None and not self._run_confirmed and time >= self._run_deadline:
            self._run_confirmed = True
            self._seen(self._shown(self._run_state, self._run_apart), self._run_frame, self._run_time, events)
        if self._run_state is None or self._key_list[state] != self._key_list[self._run_state]:
            self._run_state = state
            self._run_frame = frame
            self._run_time = time
            self._run_deadline = time + self._thresholds[state]
            self._run_confirmed = False
            self._run_apart = bool(self._apart_list[state])
        elif self._apart_list[state]:
            self._run_apart = True
        return events

    def _shown(self, state: int, apart: bool) -> int:
        """The state a confirmed run is seen as: its first, or an apart state (see __init__)."""
        return self._apart_state if apart and self._apart_state is not None else state

    def process(self, times, states, start_frame: Optional[int] = None) -> list:
        """Feed many frames at once; same result as calling :meth:`update` for each.

        Long stretches of one state cost nothing: the states are run-length encoded and the
        debounce is solved with ``searchsorted``; Python only sees the few seen-state
        changes. ``start_frame`` is the index of ``states[0]`` (default: continue).
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
        earliest = starts + 1  # a run is confirmed by a frame after its first
        confirmed_before = np.zeros(len(starts), bool)
        run_frames = base + starts
        run_times = times[starts]
        events: list = []

        apart_so_far = np.concatenate(([0], np.cumsum(self._apart_array[states])))
        merged = self._run_state is not None and keys[0] == self._key_list[self._run_state]
        carried_apart = merged and self._run_apart
        if merged:
            # The chunk continues the open run: its state, start, deadline and status carry over.
            run_states[0] = self._run_state
            deadlines[0] = self._run_deadline
            earliest[0] = 0
            confirmed_before[0] = self._run_confirmed
            run_frames[0] = self._run_frame
            run_times[0] = self._run_time
        elif self._run_state is not None and not self._run_confirmed and times[0] >= self._run_deadline:
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
            # Apart frames among each run's frames before the one that confirmed it.
            apart = (apart_so_far[hit[changed]] - apart_so_far[starts[changed]]) > 0
            apart |= (changed == 0) & carried_apart
            for state, apart_run, frame, time in zip(run_states[changed].tolist(), apart.tolist(), seen_frames,
                                                     seen_times):
                self._seen(self._shown(state, apart_run), frame, time, events)

        last = len(starts) - 1
        self._run_state = int(run_states[last])
        self._run_frame = int(run_frames[last])
        self._run_time = float(run_times[last])
        self._run_deadline = float(deadlines[last])
        self._run_confirmed = bool(confirmed_before[last] or newly[last])
        self._run_apart = bool(apart_so_far[n] - apart_so_far[starts[last]] > 0 or (last == 0 and carried_apart))
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
        static = self.tuning.static_seconds
        if static <= 0:
            return
        if self._people_list[state] == 0:
            if seconds >= STATIC_CLEAR_SECONDS and self._static:
                self._static.clear()  # a long truly empty stretch: the warm thing has gone
            return
        if state in self._static:
            return
        # A leaky sum of the time this state was seen: people pass through a state in a
        # fraction of a second, lingerers stay seconds; a warm object fills most of the time.
        booked = self._presence.get(state)
        value = seconds if booked is None else booked[0] * math.exp((booked[1] - time) / STATIC_WINDOW_SECONDS) + seconds
        self._presence[state] = (value, time)
        if value < static:
            return
        self._static.add(state)
        self._presence.pop(state, None)
        self._warn(f"state {state} was in view for most of the last minute up to frame {frame}; "
                   "taken for a warm object and counted as empty")
        # Re-read the passage in progress with that state as empty: the crossings it hid
        # are counted now (with their own frames and times).
        passage, self._passage = self._passage, None
        if passage is not None:
            for run_people, _, run_frame, run_time, run_state in passage.runs:
                self._feed(run_state, run_frame, run_time, events)

    def _feed(self, state: int, frame: int, time: float, events: list) -> None:
        """The passage logic for one seen state."""
        people = self._people_list[state]
        if state in self._static:
            people = 0
        elif people >= 2 and self._static:
            people = 1  # one of the two warm blobs is the static thing
        passage = self._passage
        if people == 0:
            if passage is not None:
                self._close(passage, frame, time, events)
                self._passage = None
            return
        side = self._sides_list[state]
        if passage is None:
            passage = self._passage = _Passage()
        elif (people == 1 and side != _SIDE_M and self.tuning.split_on_jump_back
              and not passage.has_two and passage.runs):
            previous = passage.runs[-1]
            # Cheapest tests first: this runs for every seen state change.
            if (previous[0] == 1 and previous[1] == _other(side) and side == _first_side(passage.runs)
                    and abs(self._positions[previous[4]] - self._positions[state]) >= self.tuning.jump_back_min_gap):
                self._close(passage, frame, time, events)
                passage = self._passage = _Passage()
        if len(passage.runs) >= MAX_PASSAGE_STATES:
            # Not a person walking through: something warm stays in view and flickers (a
            # heater, a sleeping pet). Forget it rather than grow without bound.
            self._warn(f"something stayed in view with {len(passage.runs)} state changes up to "
                       f"frame {frame}; not counted (a warm object in view?)")
            passage = self._passage = _Passage()
        if people >= 2:
            if passage.first_two is None:
                passage.first_two = (frame, time)
            passage.last_was_two = True
        elif passage.last_was_two:
            passage.two_end = (frame, time)
            passage.last_was_two = False
        passage.runs.append((people, side, frame, time, state))

    def _close(self, passage: _Passage, frame: int, time: float, events: list) -> None:
        """Turn a finished passage into events. (frame, time): when it ended."""
        middle_at = [i for i, run in enumerate(passage.runs) if run[1] == _SIDE_M or run[0] >= 2]
        if self.tuning.opposite_edges_pass and middle_at:
            runs = passage.runs
            edge = self._edge_list
            head = {run[1] for run in runs[:middle_at[0]] if edge[run[4]]}
            tail = {run[1] for run in runs[middle_at[-1] + 1:] if edge[run[4]]}
            if {_SIDE_A, _SIDE_B} <= head or {_SIDE_A, _SIDE_B} <= tail:
                # Both edges seen before anyone reached the middle (or after everyone left
                # it): two people, one at each edge - they passed each other.
                first, last = runs[middle_at[0]], runs[middle_at[-1]]
                self._emit(_SIDE_A, _SIDE_B, first[2], first[3], events)
                self._emit(_SIDE_B, _SIDE_A, last[2], last[3], events)
                return
        if not passage.has_two:
            known = [(side, f, t) for _, side, f, t, _ in passage.runs if side != _SIDE_M]
            if not known:
                return
            entry, exit_ = known[0][0], known[-1][0]
            # The crossing moment: the first frame of the final stay on the exit side.
            index = len(known) - 1
            while index > 0 and known[index - 1][0] == exit_:
                index -= 1
            if entry != exit_:
                self._emit(entry, exit_, known[index][1], known[index][2], events)
            elif (self.tuning.infer_middle_entry and passage.runs[0][1] == _SIDE_M
                  and all(side == exit_ for side, _, _ in known)):
                self._emit(_other(exit_), exit_, known[0][1], known[0][2], events)
            elif (self.tuning.infer_middle_exit and passage.runs[-1][1] == _SIDE_M
                  and self._faint_edge_list[passage.runs[0][4]] and all(side == entry for side, _, _ in known)):
                last = passage.runs[-1]
                self._emit(entry, _other(entry), last[2], last[3], events)
            return
        if passage.last_was_two:
            passage.two_end = (frame, time)
        first_two, two_end = passage.first_two, passage.two_end
        runs = passage.runs
        two_at = [i for i, run in enumerate(runs) if run[0] >= 2]
        if self._any_apart(runs):
            # Two people apart in the view (one near each edge): people following each other
            # come 1.5-2 pixels apart at most, people passing each other start and end at
            # opposite edges - a pass.
            self._emit_pass(_SIDE_A, first_two, two_end, events)
            return
        # Where the first person came from (alone, before the second appeared) and where the
        # last one left (alone, after the pair split up); two-person states with a position
        # stand in when nobody was seen alone on that end.
        entry = _first_side(runs[:two_at[0]]) or _first_side(runs[two_at[0]:two_at[-1] + 1])
        exit_ = _last_side(runs[two_at[-1] + 1:]) or _last_side(runs[two_at[0]:two_at[-1] + 1])
        if entry is not None and exit_ is not None and entry == exit_:
            # Passing each other: one went across and the other came back.
            self._emit_pass(entry, first_two, two_end, events)
            return
        if entry is None and exit_ is None:
            self._warn(
                f"two people in view at frame {first_two[0]} but no state tells where; not counted")
            return
        # Following each other (or leaving together): both went the same way.
        start = entry if entry is not None else _other(exit_)
        end = _other(start)
        self._emit(start, end, *first_two, events)
        self._emit(start, end, *two_end, events)

    def _any_apart(self, runs: list) -> bool:
        """A two-people state without a position (two people apart) among the runs."""
        apart = self._apart_list
        return any(apart[run[4]] for run in runs)

    def _emit_pass(self, first_from: int, first_two: tuple, two_end: tuple, events: list) -> None:
        """Two people passing each other: one event each way. They cross the door line at
        about the same moment, halfway through the time both were in view."""
        frame = (first_two[0] + two_end[0]) // 2
        moment = (first_two[1] + two_end[1]) / 2.0
        # The entry first: an exit first could find the room at 0 and be clamped.
        inward_first = (first_from == _SIDE_A) != self.flip
        first = first_from if inward_first else _other(first_from)
        self._emit(first, _other(first), frame, moment, events)
        self._emit(_other(first), first, frame, moment, events)

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


def _other(side: int) -> int:
    return _SIDE_B if side == _SIDE_A else _SIDE_A


def _first_side(runs: list) -> Optional[int]:
    for _, side, _, _, _ in runs:
        if side != _SIDE_M:
            return side
    return None


def _last_side(runs: list) -> Optional[int]:
    return _first_side(runs[::-1])


__all__ = ["Counter", "CountEvent", "CounterTuning", "TUNING_NAMES"]
