"""Scenario families for the thermal scene simulator: who walks under the sensor, and how.

A scenario is a named set of :class:`SceneParams`. The people part is a stream of
*episodes* (one person crossing, two following, two passing, a lingerer, a turn-back) drawn
with the scenario's weights and separated by random gaps. Each episode yields
:class:`Person` paths on the floor in metres: ``x`` runs along the direction of travel with
the door line under the sensor at ``x = 0``, ``y`` across it. The simulator projects each
person's body through the sensor's optics (:mod:`thermalcount.sensors.sim.simulator`), so how
big and how warm a person looks follows from where they are, not from a hand-set blob.

Every figure about people (heights, walking speeds, pauses at the edges, how far apart pairs
walk) is drawn per person or per episode from a range, so no model can learn one size.
docs/simulator.md cites the real measurements (../shared/reference/thermal-scenes.md) each
range comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Optional

import numpy as np

from thermalcount.errors import UsageError

#: The door line, under the sensor (m along the travel direction).
MID_LINE = 0.0
#: Where people start and end (m from the door line): beyond what a 60° view sees of a
#: person's hips from a 3 m ceiling, so every path starts and ends out of view.
OFF_DISTANCE = 3.0

#: Walking speeds in m/s (the issue's 0.5-1.5 m/s, split in three classes).
SPEED_CLASSES = {"slow": (0.5, 0.75), "normal": (0.75, 1.1), "fast": (1.1, 1.5)}

EPISODE_KINDS = ("single", "following", "passing", "lingering", "turnback")


@dataclass
class SceneParams:
    """Every knob of a scene. Scenarios set some; ``Simulator(**overrides)`` may set any."""

    ambient: float = 21.0  # °C, room temperature (mean background)
    ambient_jitter: float = 0.8  # ± °C per room, only when ambient is not given explicitly
    drift: float = 0.5  # peak-to-peak °C of the slow background wander
    drift_period: float = 3600.0  # s, longest period of the wander
    noise: Optional[float] = None  # temporal noise std °C; None: per room 0.28-0.38 at 10 FPS, ~0.08 at 1 FPS
    fixed_pattern: Optional[float] = None  # spread (p5-p95) °C of the per-pixel offsets; None: per room 1.0-2.2
    room: Optional[int] = None  # seed of everything that belongs to the room/sensor; None: the seed
    quantum: float = 0.25  # °C per sensor LSB; 0 disables quantisation (tests only)
    ceiling: tuple = (2.2, 3.0)  # m, sensor height above the floor, drawn per room
    optics_blur: tuple = (0.65, 0.9)  # px, std of the lens's spread (pixel crosstalk), per room
    person_height: tuple = (1.5, 1.95)  # m, drawn per person
    episodes: dict = field(default_factory=lambda: {"single": 1.0})  # kind -> weight
    gap_mean: float = 5.0  # s, mean of the exponential part of the empty gap between episodes
    #: s; negative: the next episode begins while the last people are still walking away
    #: beyond the view (their paths run 3 m past the door line)
    gap_min: float = 1.0
    hat_prob: float = 0.0  # chance a person wears a hat or hood (a cooler head)
    speed_mix: tuple = (0.35, 0.45, 0.2)  # probabilities of slow, normal, fast walkers
    #: Chance a walker pauses at each edge of the view (half in view, beyond the door line)
    #: and how long: real crossings spend ~3x more frames at the edges than in the middle.
    edge_pause_prob: float = 0.65
    edge_pause: tuple = (0.5, 3.0)  # s
    linger_continue_prob: float = 0.5  # a lingerer continues (event) or goes back (no event)
    linger_distance: tuple = (0.05, 0.3)  # m before the door line where lingerers stand (negative: past it)
    #: Two people back to back cross the door line this many seconds apart.
    follow_gap: tuple = (0.7, 1.4)
    warm_object_prob: float = 0.0  # chance the room has a static warm object in view
    skin_temperature: float = 34.0  # °C: a surface's contrast is a fraction of (skin - room)
    #: Keep the room's occupancy: nobody leaves an empty room, and the room empties again
    #: (a pause of ``empty_pause`` s once it does, so lights switched by it go off).
    room_occupancy: bool = False
    empty_pause: tuple = (20.0, 90.0)


def param_names() -> list[str]:
    return [f.name for f in fields(SceneParams)]


@dataclass
class Scenario:
    name: str
    description: str
    params: dict


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("single", "one person at a time crosses, slow/normal/fast walkers", {}),
        Scenario("following", "two people the same way, back to back: crossings 0.7-1.4 s apart",
                 {"episodes": {"following": 1.0}}),
        Scenario("passing", "two people pass each other side by side in opposite directions",
                 {"episodes": {"passing": 1.0}}),
        Scenario("lingering", "a person stands near the door line for seconds, then continues or goes back",
                 {"episodes": {"lingering": 1.0}}),
        Scenario("turnback", "people come up to the door line and return (no event), mixed with crossings",
                 {"episodes": {"turnback": 0.6, "single": 0.4}}),
        Scenario("low_contrast", "hats and hoods in a slightly warm room: cooler heads",
                 {"hat_prob": 1.0, "ambient": 23.5, "episodes": {"single": 0.7, "following": 0.3}}),
        Scenario("warm_room", "a 26-28 °C room where people stand out by only a few degrees",
                 {"ambient": 27.0, "ambient_jitter": 1.0, "hat_prob": 0.15,
                  "episodes": {"single": 0.6, "following": 0.2, "passing": 0.2}}),
        Scenario("drift", "the background drifts by several degrees within minutes (sun, heating)",
                 {"drift": 5.0, "drift_period": 1200.0}),
        Scenario("warm_object", "a static warm patch (laptop, radiator) in view",
                 {"warm_object_prob": 1.0, "episodes": {"single": 0.7, "following": 0.15, "passing": 0.15}}),
        Scenario("busy", "people come and go back to back: 55-70 % of frames show someone",
                 {"gap_mean": 0.5, "gap_min": -3.5, "hat_prob": 0.15, "room_occupancy": True,
                  "empty_pause": (2.0, 6.0),
                  "episodes": {"single": 0.5, "following": 0.2, "passing": 0.2, "lingering": 0.05,
                               "turnback": 0.05}}),
        Scenario("mixed", "a room: people come in, stay and leave; all of the above (the default)",
                 {"gap_mean": 6.0, "hat_prob": 0.15, "drift": 1.5, "warm_object_prob": 0.3,
                  "room_occupancy": True,
                  "episodes": {"single": 0.55, "following": 0.1, "passing": 0.1, "lingering": 0.12,
                               "turnback": 0.13}}),
        Scenario("empty", "nobody: background, noise and drift only", {"episodes": {}, "drift": 1.0}),
    ]
}


def list_scenarios() -> list[tuple[str, str]]:
    """(name, one-line description) for every scenario, in a stable order."""
    return [(s.name, s.description) for s in SCENARIOS.values()]


def _pair(name: str, value) -> tuple:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a (low, high) pair of numbers (got {value!r})") from None
    if not low <= high:
        raise UsageError(f"{name} must be (low, high) with low <= high (got {value!r})")
    return low, high


def scene_params(scenario: str, overrides: dict) -> SceneParams:
    """The scenario's parameters with ``overrides`` applied; bad names raise UsageError."""
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    unknown = sorted(set(overrides) - set(param_names()))
    if unknown:
        raise UsageError(f"unknown simulator parameter(s) {', '.join(unknown)}; valid: {', '.join(param_names())}")
    params = replace(SceneParams(), **SCENARIOS[scenario].params)
    params = replace(params, **overrides)
    bad = sorted(set(params.episodes) - set(EPISODE_KINDS))
    if bad:
        raise UsageError(f"unknown episode kind(s) {', '.join(bad)}; valid: {', '.join(EPISODE_KINDS)}")
    for name in ("ceiling", "optics_blur", "person_height", "edge_pause", "linger_distance", "follow_gap",
                 "empty_pause"):
        setattr(params, name, _pair(name, getattr(params, name)))
    low, high = params.ceiling
    if not 1.9 <= low and high <= 6.0:
        raise UsageError(f"ceiling must lie within 1.9-6.0 m (got {params.ceiling})")
    if params.person_height[0] < 0.5 or params.person_height[1] > low - 0.2:
        raise UsageError(f"person_height must lie within 0.5 m and 0.2 m below the ceiling (got {params.person_height})")
    return params


@dataclass
class Body:
    """What a person looks like from above: sizes in m, warmth as a fraction of (skin - room)."""

    height: float  # m
    head_radius: float
    head_warmth: float  # hair 0.6-0.8, a hat or hood 0.3-0.5
    shoulder_half_width: float  # across the walk, arms included
    shoulder_half_depth: float  # along the walk
    clothes_warmth: float
    hat: bool = False


@dataclass
class Person:
    """One person's path. Travel position ``x`` (m) is piecewise linear through (times, positions)."""

    times: np.ndarray  # s since the stream start, increasing
    positions: np.ndarray  # x at those times, m from the door line
    lateral: float  # y, mean position across the door, m
    wander: float  # lateral sway amplitude, m
    wander_period: float  # s
    wander_phase: float
    body: Body

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def travel(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.times, self.positions)

    def side(self, t: np.ndarray) -> np.ndarray:
        return np.sin(2 * np.pi * t / self.wander_period + self.wander_phase) * self.wander + self.lateral


class PeopleStream:
    """Deterministic, endless stream of people in start order, drawn episode by episode.

    ``inward`` is the sign of x toward which walking counts as "in" (it is -1 when the sensor
    is mounted the other way round). Episodes are drawn with "in" toward +x and mirrored by
    it, so with ``room_occupancy`` (the stream keeps the room's head count and never lets
    more people leave than came in) a reversed sensor sees the same people.
    """

    def __init__(self, params: SceneParams, rng: np.random.Generator, inward: int = 1):
        self.params = params
        self.rng = rng
        self.inward = 1 if inward >= 0 else -1
        self.occupancy = 0
        kinds = [k for k, w in params.episodes.items() if w > 0]
        weights = np.array([params.episodes[k] for k in kinds], dtype=float)
        self._kinds = kinds
        self._cumulative = np.cumsum(weights / weights.sum()) if kinds else weights
        mix = np.asarray(params.speed_mix, dtype=float)
        self._speed_cumulative = np.cumsum(mix / mix.sum())
        self.cursor = self._gap()  # s: the next episode starts no earlier than this

    def next_episode(self) -> list[Person]:
        """The people of the next episode; advances ``cursor`` past it (plus a gap)."""
        if not self._kinds:
            self.cursor = float("inf")
            return []
        kind = self._kinds[self._pick(self._cumulative)]
        people = getattr(self, "_" + kind)(self.cursor)
        self.cursor = max(p.end for p in people) + self._gap()
        if self.params.room_occupancy and self.occupancy == 0 and self.rng.random() < 0.5:
            self.cursor += self.rng.uniform(*self.params.empty_pause)  # the room stays empty a while
        return people

    def _pick(self, cumulative: np.ndarray) -> int:
        # Same as rng.choice(p=...), ten times cheaper; this runs once per person.
        return min(int(np.searchsorted(cumulative, self.rng.random(), side="right")), len(cumulative) - 1)

    def _gap(self) -> float:
        return self.params.gap_min + self.rng.exponential(self.params.gap_mean)

    # -- who, how fast, which way ----------------------------------------------------------
    def _speed(self) -> float:
        low, high = list(SPEED_CLASSES.values())[self._pick(self._speed_cumulative)]
        return self.rng.uniform(low, high)

    def _direction(self, people: int = 1) -> int:
        """+1 or -1 along x for ``people`` walking the same way; books the occupancy."""
        direction = 1 if self.rng.random() < 0.5 else -1
        if self.params.room_occupancy:
            # Nobody leaves an empty room; a fuller room empties more often than it fills.
            leaving = self.occupancy >= people and self.rng.random() < min(0.9, 0.3 + 0.2 * self.occupancy)
            direction = -1 if leaving else 1
        self.occupancy = max(0, self.occupancy + people * direction)
        return direction

    def _body(self) -> Body:
        rng, p = self.rng, self.params
        hat = bool(rng.random() < p.hat_prob)
        # Adults: 1.72 m +- 0.09 m (one standard deviation), within the scene's range.
        height = float(np.clip(rng.normal(1.72, 0.09), *p.person_height))
        return Body(height=height, head_radius=rng.uniform(0.085, 0.1),
                    head_warmth=rng.uniform(0.3, 0.45) if hat else rng.uniform(0.5, 0.7),
                    shoulder_half_width=rng.uniform(0.24, 0.3), shoulder_half_depth=rng.uniform(0.15, 0.2),
                    clothes_warmth=rng.uniform(0.45, 0.65), hat=hat)

    def _person(self, keys: list, direction: int, lateral: float) -> Person:
        """keys are (time, w) with w the distance walked forward: x = direction * w."""
        rng = self.rng
        times = np.array([k[0] for k in keys], dtype=float)
        positions = self.inward * direction * np.array([k[1] for k in keys], dtype=float)
        return Person(times, positions, lateral, wander=rng.uniform(0.01, 0.05),
                      wander_period=rng.uniform(1.0, 2.5), wander_phase=rng.uniform(0, 2 * np.pi),
                      body=self._body())

    def _walk(self, start: float, speed: float, stops: list) -> list:
        """Keys of a walk from -OFF_DISTANCE to +OFF_DISTANCE at ``speed`` with pauses.

        ``stops`` are (w, seconds) places to stand on the way. Real walkers slow down and
        wait at the edges of the view (door, corner, someone coming), beyond the door line.
        """
        keys, t, w = [(start, -OFF_DISTANCE)], start, -OFF_DISTANCE
        for spot, seconds in sorted(stops):
            t += (spot - w) / speed
            keys += [(t, spot), (t + seconds, spot)]
            t, w = t + seconds, spot
        keys.append((t + (OFF_DISTANCE - w) / speed, OFF_DISTANCE))
        return keys

    def _edge_stops(self) -> list:
        """Pauses half in view on either side of the door line."""
        p, rng = self.params, self.rng
        stops = []
        for sign in (-1, 1):
            if rng.random() < p.edge_pause_prob:
                stops.append((sign * rng.uniform(0.6, 1.2), rng.uniform(*p.edge_pause)))
        return stops

    def _crossing(self, start: float, direction: int, lateral: float, speed: float, stops=()) -> Person:
        return self._person(self._walk(start, speed, list(stops)), direction, lateral)

    # -- episodes ------------------------------------------------------------------------
    def _single(self, t0: float) -> list[Person]:
        rng = self.rng
        return [self._crossing(t0, self._direction(), rng.uniform(-0.3, 0.3), self._speed(), self._edge_stops())]

    def _following(self, t0: float) -> list[Person]:
        rng = self.rng
        direction, speed = self._direction(2), self._speed()
        lateral = rng.uniform(-0.25, 0.25)
        first = self._crossing(t0, direction, lateral, speed)
        second_speed = speed * rng.uniform(0.9, 1.1)
        first_mid = t0 + OFF_DISTANCE / speed
        second_start = first_mid + rng.uniform(*self.params.follow_gap) - OFF_DISTANCE / second_speed
        lateral_2 = float(np.clip(lateral + rng.uniform(-0.3, 0.3), -0.35, 0.35))
        return [first, self._crossing(max(second_start, t0), direction, lateral_2, second_speed)]

    def _passing(self, t0: float) -> list[Person]:
        rng = self.rng
        if self.params.room_occupancy and self.occupancy == 0:
            return self._single(t0)  # nobody inside to come out
        offset = rng.uniform(0.15, 0.3)  # each keeps to one side of the door
        side = 1 if rng.random() < 0.5 else -1
        speed_a, speed_b = self._speed(), self._speed()
        mid_a = t0 + OFF_DISTANCE / speed_a
        mid_b = mid_a + rng.uniform(-0.5, 0.5)
        start_b = mid_b - OFF_DISTANCE / speed_b
        shift = max(0.0, t0 - start_b)  # keep both starting at or after t0
        return [self._crossing(t0 + shift, 1, side * offset, speed_a),
                self._crossing(start_b + shift, -1, -side * offset, speed_b)]

    def _lingering(self, t0: float) -> list[Person]:
        rng, p = self.rng, self.params
        direction = self._direction() if p.room_occupancy else (1 if rng.random() < 0.5 else -1)
        continues = rng.random() < p.linger_continue_prob
        if p.room_occupancy and not continues:
            self.occupancy -= direction  # went back: no change after all
        speed = self._speed() * 0.8
        # Stands at or just before the line, swaying: the hard case for centroid counters.
        spot = MID_LINE - rng.uniform(*p.linger_distance)
        arrive = t0 + (spot + OFF_DISTANCE) / speed
        keys = [(t0, -OFF_DISTANCE), (arrive, spot)]
        t, stay_until = arrive, arrive + rng.uniform(2.0, 8.0)
        while t + 0.7 < stay_until:
            t += rng.uniform(0.5, 0.9)
            keys.append((t, spot + rng.uniform(-0.02, 0.02)))
        keys.append((stay_until, spot))
        leave_speed = self._speed()
        if continues:
            keys.append((stay_until + (OFF_DISTANCE - spot) / leave_speed, OFF_DISTANCE))
        else:
            keys.append((stay_until + (spot + OFF_DISTANCE) / leave_speed, -OFF_DISTANCE))
        return [self._person(keys, direction, rng.uniform(-0.3, 0.3))]

    def _turnback(self, t0: float) -> list[Person]:
        """Comes up to the door line but not across it, and goes back (no event)."""
        rng = self.rng
        speed = self._speed()
        depth = -rng.uniform(0.15, 1.0)
        arrive = t0 + (depth + OFF_DISTANCE) / speed
        leave = arrive + rng.uniform(0.0, 1.5)
        back = leave + (depth + OFF_DISTANCE) / self._speed()
        direction = 1 if rng.random() < 0.5 else -1
        if self.params.room_occupancy:
            direction = 1 if self.occupancy == 0 else direction
        keys = [(t0, -OFF_DISTANCE), (arrive, depth), (leave, depth), (back, -OFF_DISTANCE)]
        return [self._person(keys, direction, rng.uniform(-0.3, 0.3))]

