"""Who went where: the counter's seen states read as tracks of people, one passage at a time.

A *passage* is what the counter saw between two empty views. Each seen state shows one
warm blob at a position along the travel axis (0 = the low-index edge, 1 = the high one),
or two blobs apart, one toward each end (the ``apart`` state: a frame whose warmth along the
travel axis has two humps). Nothing here looks at how much heat a blob holds: a real person
in mid-view carries 2.6x the heat of the same person half in view at the edge, so heat
cannot tell one person from two (../shared/reference/thermal-scenes.md). What can is
geometry: two separate blobs, and where each one came from.

Every blob is followed as a *track* that remembers the side it was first seen on. A track
that ends on the other side than it began is one crossing. The rules, each from how people
move rather than from a scenario:

* **One blob, one track**: the track moves to the blob. When the blob jumps from the far side
  straight back to the side the track came from (by ``jump_back_min_gap`` of the view or
  more, no middle between), the first person has left and the next one has come in: the
  track ends where it was and a new one begins.
* **One track, two blobs apart**: someone new is in view, and people come into view at an
  edge. When the pair sits toward one end (one blob at that edge, the other further in),
  the newcomer is the blob at the edge. When it spans the view (one blob near each end),
  the track keeps the blob on its side; from the middle it keeps walking the way it came
  (a person does not turn round in the 0.1 s between two frames). The other blob is a new
  track.
* **Two tracks, one blob**: in the middle, the two have merged (people passing or following
  close together look like one blob); both follow it. At an edge, the blob is the track on
  that side, or the one walking toward it; the other one, if it was at the other edge
  walking out there, has left the view; if it was walking in from there, it has met the
  first one (people passing each other merge into one blob whose centre can sit well off
  the middle); if the two had met in the middle and it walks the other way, it is still in
  the blob, hidden, where it was.
* **Two tracks, two blobs**: tracks on opposite sides keep their sides; merged ones part
  the way each came from.
* A lone track first seen in the middle (1 FPS, where a crossing spans two frames) that
  leaves on one side came from the other (``infer_middle_entry``); one that began as a
  faint edge (someone just outside the view, the frame rules) and was last seen in the
  middle left on the other side (``infer_middle_exit``). When the view empties with two
  tracks, one last seen in the middle walked on the way it was going: nobody vanishes in
  mid-view, and two people apart who leave at both ends at once may show only one of them
  at its edge in the last frames.

A crossing happens at the first frame of the track's final stay on its exit side.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

SIDE_M, SIDE_A, SIDE_B = 0, 1, 2
#: Where the two blobs of an apart state are taken to be, by where the pair sits: toward the
#: low end (one at the low edge, one further in), one near each end, toward the high end.
APART_POSITIONS = {"low": (0.05, 0.5), "both": (0.15, 0.85), "high": (0.5, 0.95)}


def other_side(side: int) -> int:
    return SIDE_B if side == SIDE_A else SIDE_A


def side_of(position: Optional[float], low_side_max: float, high_side_min: float) -> int:
    """A (position <= low_side_max), B (>= high_side_min), or the middle (between, or None)."""
    if position is None:
        return SIDE_M
    if position <= low_side_max:
        return SIDE_A
    if position >= high_side_min:
        return SIDE_B
    return SIDE_M


class Crossing(NamedTuple):
    """One person who crossed: from side, to side, and the frame and time they did."""

    from_side: int
    to_side: int
    frame: int
    time: float


class _Track:
    __slots__ = ("position", "side", "first_side", "started_mid", "first_known", "last_known", "arrived",
                 "faint_start", "last_seen", "backtracks", "begun")

    def __init__(self, position: float, side: int, frame: int, time: float, faint: bool):
        self.position = position
        self.side = side
        self.first_side: Optional[int] = None  # first side other than the middle
        self.started_mid = side == SIDE_M
        self.first_known: Optional[tuple] = None  # (frame, time) first seen on a side
        self.last_known: Optional[int] = None  # last side other than the middle
        self.arrived: Optional[tuple] = None  # (frame, time) the final stay on last_known began
        self.faint_start = faint
        self.last_seen = (frame, time)
        self.backtracks = 0  # times it went back from the side it was walking to
        self.begun = frame
        self.move(position, side, frame, time)

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in _Track.__slots__)

    def clone(self) -> "_Track":
        twin = object.__new__(_Track)
        for name in _Track.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin

    def move(self, position: float, side: int, frame: int, time: float) -> None:
        if self.first_side is not None and self.side == self.heading() and side != self.side:
            self.backtracks += 1
        self.position, self.side, self.last_seen = position, side, (frame, time)
        if side == SIDE_M:
            return
        if self.first_side is None:
            self.first_side, self.first_known = side, (frame, time)
        if side != self.last_known:
            self.last_known, self.arrived = side, (frame, time)

    def heading(self) -> int:
        """The side this track walks toward: away from where it came from."""
        if self.first_side is not None:
            return other_side(self.first_side)
        return SIDE_B if self.position >= 0.5 else SIDE_A


class _Reading:
    """One reading of who is who in a passage: its tracks, and the crossings of the tracks
    that ended. Where two blobs apart could be read two ways, the passage keeps both."""

    __slots__ = ("tracks", "crossed", "tracks_seen", "cost")

    def __init__(self):
        self.tracks: list = []
        self.crossed: list = []  # Crossing of ended tracks, not handed out yet
        self.tracks_seen = 0  # tracks begun (infer_middle_entry is for a lone one)
        self.cost = 0  # turn-backs and steps back: what people walking through rarely do

    def clone(self, old_tracks: list) -> tuple:
        """A copy, and the copies of ``old_tracks`` (tracks of this reading) in it."""
        twin = _Reading()
        twin.tracks = [track.clone() for track in self.tracks]
        twin.crossed, twin.tracks_seen, twin.cost = list(self.crossed), self.tracks_seen, self.cost
        return twin, [twin.tracks[self.tracks.index(track)] for track in old_tracks]

    def score(self) -> int:
        return self.cost + sum(track.backtracks for track in self.tracks)

    def same_as(self, other: "_Reading") -> bool:
        """Both readings now say the same: who is where, and what they counted."""
        return (self.score() == other.score() and self.crossed == other.crossed
                and [_Track.key(t) for t in self.tracks] == [_Track.key(t) for t in other.tracks])


#: Readings kept at once in one passage; the most costly go first.
MAX_READINGS = 8
#: A crossing waits at most this long for an earlier track still in view (a pass's entry).
HOLD_SECONDS = 3.0


class PassageTracks:
    """The tracks of one passage. Feed it each seen state with :meth:`see` or
    :meth:`see_apart`, then :meth:`close`. Each returns the :class:`Crossing` list of the
    tracks that ended with it.

    Two blobs apart next to one track can be read two ways: the track is the inner blob and
    someone new came in at the edge, or the track is the blob at the edge (walking out) and
    someone behind it is the inner one. Both readings are followed; when the passage closes,
    the one in which people did least of what people walking through rarely do (turn back,
    step back from where they were going) is taken, the newcomer-at-the-edge reading on a tie.
    While more than one reading is open, crossings wait - for the close, or at most
    HOLD_SECONDS, after which the best reading so far is taken.
    """

    def __init__(self, *, low_side_max: float = 0.4, high_side_min: float = 0.6, jump_back_min_gap: float = 0.5,
                 split_on_jump_back: bool = True, infer_middle_entry: bool = True, infer_middle_exit: bool = True):
        self.low_side_max, self.high_side_min = low_side_max, high_side_min
        self.jump_back_min_gap = jump_back_min_gap
        self.split_on_jump_back = split_on_jump_back
        self.infer_middle_entry = infer_middle_entry
        self.infer_middle_exit = infer_middle_exit
        self.readings: list = [_Reading()]
        self._branched: Optional[float] = None  # when more than one reading opened

    @property
    def tracks(self) -> list:
        """The tracks of the best reading so far."""
        return min(self.readings, key=_Reading.score).tracks

    def side_of(self, position: Optional[float]) -> int:
        return side_of(position, self.low_side_max, self.high_side_min)

    # ------------------------------------------------------------------------------ input
    def see(self, position: Optional[float], frame: int, time: float, faint: bool = False) -> list:
        """A seen state with one blob at ``position`` (None: somewhere unknown); ``faint``:
        the frame rules' someone-just-outside-the-view."""
        place = 0.5 if position is None else float(position)
        for reading in self.readings:
            self._one_blob(reading, place, self.side_of(position), frame, time, faint)
        return self._handed_out(time)

    def see_apart(self, where: str, frame: int, time: float) -> list:
        """A seen state with two blobs apart; ``where`` the pair sits: low, both or high."""
        low, high = APART_POSITIONS[where]
        low, high = (low, self.side_of(low)), (high, self.side_of(high))
        readings = []
        for reading in self.readings:
            readings += self._two_blobs(reading, low, high, where, frame, time)
        readings.sort(key=_Reading.score)  # stable: the first reading wins a tie
        self.readings = readings[:MAX_READINGS]
        if len(self.readings) > 1 and self._branched is None:
            self._branched = time
        return self._handed_out(time)

    def close(self, frame: int, time: float) -> list:
        """The view is empty: every track ends where it was last seen; the best reading's
        crossings are handed out."""
        for reading in self.readings:
            pair = len(reading.tracks) > 1
            for track in reading.tracks:
                self._finish(reading, track, walked_on=pair)
            reading.tracks = []
        best = min(self.readings, key=_Reading.score)
        self.readings = [best]
        return self._handed_out(time)

    def _handed_out(self, time: float) -> list:
        """Crossings that can be counted now: one reading is left, and no track still in
        view was there before them (its own crossing may come earlier: a pass must count
        its entry before its exit, or an empty room would clamp the exit) - or they are
        HOLD_SECONDS old: someone standing in the door must not hold the lights back."""
        readings = []
        for reading in self.readings:  # readings that have become the same are one
            if not any(reading.same_as(other) for other in readings):
                readings.append(reading)
        self.readings = readings
        if len(readings) > 1 and self._branched is not None and time - self._branched >= HOLD_SECONDS:
            # Undecided for long: go with the best reading so far rather than hold the count.
            self.readings = [min(readings, key=_Reading.score)]
        if len(self.readings) > 1:
            return []
        self._branched = None
        reading = self.readings[0]
        first_open = min((track.begun for track in reading.tracks), default=None)
        ready = [c for c in reading.crossed
                 if first_open is None or c.frame < first_open or c.time <= time - HOLD_SECONDS]
        reading.crossed = [c for c in reading.crossed if c not in ready]
        return ready

    # ------------------------------------------------------------------------------- rules
    def _begin(self, reading: _Reading, position: float, side: int, frame: int, time: float, faint: bool):
        track = _Track(position, side, frame, time, faint)
        reading.tracks.append(track)
        reading.tracks_seen += 1
        return track

    def _one_blob(self, reading: _Reading, position: float, side: int, frame: int, time: float,
                  faint: bool) -> None:
        tracks = reading.tracks
        if not tracks:
            self._begin(reading, position, side, frame, time, faint)
            return
        if len(tracks) == 1:
            track = tracks[0]
            if (self.split_on_jump_back and side != SIDE_M and track.side == other_side(side)
                    and track.first_side == side and abs(track.position - position) >= self.jump_back_min_gap):
                self._finish(reading, track)
                reading.tracks = []
                self._begin(reading, position, side, frame, time, faint)
            else:
                track.move(position, side, frame, time)
            return
        # Two tracks, one blob.
        if side == SIDE_M:
            for track in tracks:  # merged in the middle
                track.move(position, side, frame, time)
            return
        # The blob is the track on its side, else the one walking toward it, else the nearer.
        stays = min(tracks, key=lambda t: (t.side != side, side != SIDE_M and t.heading() != side,
                                           abs(t.position - position)))
        stays.move(position, side, frame, time)
        for track in [t for t in tracks if t is not stays]:
            if track.side == other_side(side) and track.heading() == track.side:
                # It was at the far edge, walking out there: it has left the view.
                self._finish(reading, track)
                tracks.remove(track)
            elif side != SIDE_M and track.side == SIDE_M and track.heading() != side:
                # Two who met in the middle, and the blob went one way: the other is still
                # in it, walking the other way, hidden by the first.
                continue
            else:  # walking toward the other one: they have met and look like one blob
                track.move(position, side, frame, time)

    def _two_blobs(self, reading: _Reading, low: tuple, high: tuple, where: str, frame: int, time: float) -> list:
        """The readings that follow from ``reading`` (one, or two where it is ambiguous)."""
        tracks = reading.tracks
        if not tracks:
            self._begin(reading, *low, frame, time, False)
            self._begin(reading, *high, frame, time, False)
            return [reading]
        if len(tracks) == 1:
            track = tracks[0]
            if where == "low":  # someone new at the low edge, the one we follow further in
                choices = [(high, low), (low, high)]
            elif where == "high":
                choices = [(low, high), (high, low)]
            elif track.side == SIDE_A or (track.side == SIDE_M and track.heading() == SIDE_A):
                choices = [(low, high)]
            else:
                choices = [(high, low)]
            if track.side == SIDE_M and where == "both":
                choices.append(choices[0][::-1])
            out = []
            for number, (mine, new) in enumerate(choices):
                this, (own,) = (reading, [track]) if number == len(choices) - 1 else reading.clone([track])
                newcomer = self._begin(this, *new, frame, time, False)
                if number > 0:
                    # The other reading: the track is the blob at the edge, and the newcomer
                    # walked in behind it, from where the track came from.
                    newcomer.first_side = own.first_side
                    newcomer.last_known = own.first_side
                own.move(*mine, frame, time)
                out.append(this)
            return out
        first, second = tracks[0], tracks[1]
        if first.side != second.side and SIDE_M not in (first.side, second.side):
            lower, upper = (first, second) if first.position <= second.position else (second, first)
        elif first.heading() != second.heading():
            lower, upper = (first, second) if first.heading() == SIDE_A else (second, first)
        else:
            # Same way (following each other): the one that came first is ahead.
            ahead, behind = first, second
            lower, upper = (behind, ahead) if ahead.heading() == SIDE_B else (ahead, behind)
        lower.move(*low, frame, time)
        upper.move(*high, frame, time)
        return [reading]

    def _finish(self, reading: _Reading, track: _Track, walked_on: bool = False) -> None:
        """The track has ended. ``walked_on``: the view emptied while it was one of two, so
        a track last seen in the middle walked on the way it was going (nobody vanishes in
        mid-view; two people apart leave at both ends in the same moment, and the last
        frames may show only where one of them was)."""
        entry, exit_ = track.first_side, track.last_known
        reading.cost += track.backtracks
        track.backtracks = 0
        if entry is not None and exit_ is not None and entry != exit_:
            reading.crossed.append(Crossing(entry, exit_, *track.arrived))
            return
        if walked_on and track.side == SIDE_M and entry is not None:
            reading.crossed.append(Crossing(entry, other_side(entry), *track.last_seen))
            return
        if entry is not None and exit_ == entry:
            reading.cost += 1  # went back where they came from
        if (self.infer_middle_entry and track.started_mid and exit_ is not None and reading.tracks_seen == 1):
            reading.crossed.append(Crossing(other_side(exit_), exit_, *track.first_known))
        elif (self.infer_middle_exit and track.faint_start and track.side == SIDE_M and entry is not None
              and exit_ == entry):
            reading.crossed.append(Crossing(entry, other_side(entry), *track.last_seen))
