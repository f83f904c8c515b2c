"""Scenario families for the thermal scene simulator: who walks under the sensor, and how.

A scenario is a named set of :class:`SceneParams`. The people part is a stream of
*episodes* (one person crossing, two following, two passing, a lingerer, a turn-back) drawn
with the scenario's weights and separated by random gaps. Each episode yields
:class:`Person` trajectories in a canonical geometry: the travel coordinate ``u`` runs along
array axis 0 in pixel units (pixel centres at 0..7, field of view -0.5..7.5, mid line at
3.5) and ``v`` is the lateral coordinate. The simulator renders these and turns them into
the requested axis/orientation afterwards.

The figures (blob size, speeds, gaps) follow /docs/simulator.md, which cites the measured
real-room statistics they reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Iterator, Optional

import numpy as np

from thermalcount.errors import UsageError

MID_LINE = 3.5
#: Where people start and end: far enough outside the view (-0.5..7.5) that no pixel sees them.
OFF_LOW, OFF_HIGH = -4.0, 11.0

# Walking speed classes in pixels per second. A normal walker is visible (some pixel >= 2 °C
# above background) for ~9.4 px of travel, i.e. 15-20 frames at 10 FPS, as measured.
SPEED_CLASSES = {"slow": (3.3, 4.7), "normal": (4.7, 6.3), "fast": (6.3, 8.5)}

EPISODE_KINDS = ("single", "following", "passing", "lingering", "turnback")


@dataclass
class SceneParams:
    """Every knob of a scene. Scenarios set some; ``Simulator(**overrides)`` may set any."""

    ambient: float = 21.0  # °C, room temperature (mean background)
    ambient_jitter: float = 0.8  # ± °C per room, only when ambient is not given explicitly
    drift: float = 0.5  # peak-to-peak °C of the slow background wander
    drift_period: float = 3600.0  # s, longest period of the wander
    noise: Optional[float] = None  # temporal noise std °C; None: 0.37 at 10 FPS, 0.08 at 1 FPS
    fixed_pattern: Optional[float] = None  # spread (max-min) °C of the per-pixel offsets; None: per room 1.0-2.0
    room: Optional[int] = None  # seed of everything that belongs to the room/sensor; None: the seed
    quantum: float = 0.25  # °C per sensor LSB; 0 disables quantisation (tests only)
    episodes: dict = field(default_factory=lambda: {"single": 1.0})  # kind -> weight
    gap_mean: float = 5.0  # s, mean of the exponential part of the empty gap between episodes
    gap_min: float = 1.0  # s
    hat_prob: float = 0.0  # chance a person wears a hat/hood (smaller, cooler blob)
    speed_mix: tuple = (0.2, 0.6, 0.2)  # probabilities of slow, normal, fast walkers
    linger_continue_prob: float = 0.5  # a lingerer continues (event) or goes back (no event)
    linger_distance: tuple = (0.2, 1.2)  # px before the mid line where lingerers stand (negative: past it)
    warm_object_prob: float = 0.0  # chance the room has a static warm object in view
    skin_temperature: float = 33.0  # °C at which a person no longer stands out at all


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
        Scenario("following", "two people in the same direction, crossings 3-4 frames apart",
                 {"episodes": {"following": 1.0}}),
        Scenario("passing", "two people pass each other side by side in opposite directions",
                 {"episodes": {"passing": 1.0}}),
        Scenario("lingering", "a person stands near the mid line for seconds, then continues or goes back",
                 {"episodes": {"lingering": 1.0}}),
        Scenario("turnback", "people come halfway in and return (no event), mixed with crossings",
                 {"episodes": {"turnback": 0.6, "single": 0.4}}),
        Scenario("low_contrast", "hats and hoods in a slightly warm room: cooler, smaller blobs",
                 {"hat_prob": 1.0, "ambient": 23.5, "episodes": {"single": 0.7, "following": 0.3}}),
        Scenario("warm_room", "a 26-28 °C room where people stand out by only ~2 °C",
                 {"ambient": 27.0, "ambient_jitter": 1.0, "hat_prob": 0.15,
                  "episodes": {"single": 0.6, "following": 0.2, "passing": 0.2}}),
        Scenario("drift", "the background drifts by several degrees within minutes (sun, heating)",
                 {"drift": 5.0, "drift_period": 1200.0}),
        Scenario("warm_object", "a static warm patch (laptop, radiator) in view",
                 {"warm_object_prob": 1.0, "episodes": {"single": 0.7, "following": 0.15, "passing": 0.15}}),
        Scenario("busy", "people come and go back to back: 35-65 % of frames show someone",
                 {"gap_mean": 0.7, "gap_min": 0.2, "hat_prob": 0.1,
                  "episodes": {"single": 0.5, "following": 0.2, "passing": 0.2, "lingering": 0.05,
                               "turnback": 0.05}}),
        Scenario("mixed", "a mix of all the above (the default)",
                 {"gap_mean": 6.0, "hat_prob": 0.15, "drift": 1.5, "warm_object_prob": 0.3,
                  "episodes": {"single": 0.4, "following": 0.15, "passing": 0.15, "lingering": 0.15,
                               "turnback": 0.15}}),
        Scenario("empty", "nobody: background, noise and drift only", {"episodes": {}, "drift": 1.0}),
    ]
}


def list_scenarios() -> list[tuple[str, str]]:
    """(name, one-line description) for every scenario, in a stable order."""
    return [(s.name, s.description) for s in SCENARIOS.values()]


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
    return params


@dataclass
class Person:
    """One person's path. Travel position ``u`` is piecewise linear through (times, positions)."""

    times: np.ndarray  # s since the stream start, increasing
    positions: np.ndarray  # u at those times
    lateral: float  # v, mean lateral position
    wander: float  # lateral wander amplitude, px
    wander_period: float  # s
    wander_phase: float
    sigma_travel: float  # body spread along the travel axis, px
    sigma_lateral: float  # across the shoulders, px
    peak: float  # °C above background when centred on a pixel in a 21 °C room

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
    """Deterministic, endless stream of people in start order, drawn episode by episode."""

    def __init__(self, params: SceneParams, rng: np.random.Generator):
        self.params = params
        self.rng = rng
        self.cursor = 0.0  # s: the next episode starts no earlier than this
        kinds = [k for k, w in params.episodes.items() if w > 0]
        weights = np.array([params.episodes[k] for k in kinds], dtype=float)
        self._kinds = kinds
        self._cumulative = np.cumsum(weights / weights.sum()) if kinds else weights
        mix = np.asarray(params.speed_mix, dtype=float)
        self._speed_cumulative = np.cumsum(mix / mix.sum())
        self.cursor = self._gap()

    def next_episode(self) -> list[Person]:
        """The people of the next episode; advances ``cursor`` past it (plus a gap)."""
        if not self._kinds:
            self.cursor = float("inf")
            return []
        kind = self._kinds[self._pick(self._cumulative)]
        people = getattr(self, "_" + kind)(self.cursor)
        self.cursor = max(p.end for p in people) + self._gap()
        return people

    def _pick(self, cumulative: np.ndarray) -> int:
        # Same as rng.choice(p=...), ten times cheaper; this runs once per person.
        return min(int(np.searchsorted(cumulative, self.rng.random(), side="right")), len(cumulative) - 1)

    def _gap(self) -> float:
        return self.params.gap_min + self.rng.exponential(self.params.gap_mean)

    # -- one person ----------------------------------------------------------------------
    def _speed(self) -> float:
        low, high = list(SPEED_CLASSES.values())[self._pick(self._speed_cumulative)]
        return self.rng.uniform(low, high)

    def _body(self, direction: int, keys: list[tuple[float, float]], lateral: float) -> Person:
        """keys are (time, forward position w); w runs the way the person walks."""
        rng = self.rng
        times = np.array([k[0] for k in keys])
        forward = np.array([k[1] for k in keys])
        positions = forward if direction > 0 else (2 * MID_LINE - forward)
        if rng.random() < self.params.hat_prob:  # hat or hood: peak ~4 °C, ~5 hot pixels
            sig_t, sig_l, peak = rng.uniform(0.85, 0.95), rng.uniform(1.0, 1.15), rng.uniform(4.1, 4.6)
        else:  # bare head and shoulders: peak 4-5 °C, 5-8 hot pixels
            sig_t, sig_l, peak = rng.uniform(0.9, 1.0), rng.uniform(1.05, 1.25), rng.uniform(4.5, 5.1)
        return Person(times, positions, lateral, wander=rng.uniform(0.1, 0.3),
                      wander_period=rng.uniform(1.5, 3.5), wander_phase=rng.uniform(0, 2 * np.pi),
                      sigma_travel=sig_t, sigma_lateral=sig_l, peak=peak)

    def _crossing(self, start: float, direction: int, lateral: float, speed: float) -> Person:
        duration = (OFF_HIGH - OFF_LOW) / speed
        return self._body(direction, [(start, OFF_LOW), (start + duration, OFF_HIGH)], lateral)

    # -- episodes ------------------------------------------------------------------------
    def _direction(self) -> int:
        return 1 if self.rng.random() < 0.5 else -1

    def _single(self, t0: float) -> list[Person]:
        return [self._crossing(t0, self._direction(), self.rng.uniform(1.5, 5.5), self._speed())]

    def _following(self, t0: float) -> list[Person]:
        rng = self.rng
        direction, speed = self._direction(), self._speed()
        first_lateral = rng.uniform(2.0, 5.0)
        first = self._crossing(t0, direction, first_lateral, speed)
        # The second crosses the mid line 0.3-0.4 s (3-4 frames at 10 FPS) after the first.
        second_speed = speed * rng.uniform(0.95, 1.05)
        first_mid = t0 + (MID_LINE - OFF_LOW) / speed
        second_start = first_mid + rng.uniform(0.3, 0.4) - (MID_LINE - OFF_LOW) / second_speed
        lateral = float(np.clip(first_lateral + rng.uniform(-1.5, 1.5), 1.0, 6.0))
        return [first, self._crossing(second_start, direction, lateral, second_speed)]

    def _passing(self, t0: float) -> list[Person]:
        rng = self.rng
        low_side, high_side = rng.uniform(1.2, 2.8), rng.uniform(4.2, 5.8)
        if rng.random() < 0.5:
            low_side, high_side = high_side, low_side
        speed_a, speed_b = self._speed(), self._speed()
        mid_a = t0 + (MID_LINE - OFF_LOW) / speed_a
        mid_b = mid_a + rng.uniform(-0.5, 0.5)
        start_b = mid_b - (MID_LINE - OFF_LOW) / speed_b
        shift = max(0.0, t0 - start_b)  # keep both starting at or after t0
        return [self._crossing(t0 + shift, 1, low_side, speed_a),
                self._crossing(start_b + shift, -1, high_side, speed_b)]

    def _lingering(self, t0: float) -> list[Person]:
        rng = self.rng
        speed = self._speed() * 0.8
        # Stands at or just before the line, swaying: the hard case for centroid counters.
        spot = MID_LINE - rng.uniform(*self.params.linger_distance)
        arrive = t0 + (spot - OFF_LOW) / speed
        keys = [(t0, OFF_LOW), (arrive, spot)]
        t, stay_until = arrive, arrive + rng.uniform(2.0, 8.0)
        while t + 0.7 < stay_until:
            t += rng.uniform(0.5, 0.9)
            keys.append((t, spot + rng.uniform(-0.1, 0.1)))
        keys.append((stay_until, spot))
        leave_speed = self._speed()
        if rng.random() < self.params.linger_continue_prob:
            keys.append((stay_until + (OFF_HIGH - spot) / leave_speed, OFF_HIGH))
        else:
            keys.append((stay_until + (spot - OFF_LOW) / leave_speed, OFF_LOW))
        return [self._body(self._direction(), keys, rng.uniform(1.5, 5.5))]

    def _turnback(self, t0: float) -> list[Person]:
        rng = self.rng
        speed = self._speed()
        depth = rng.uniform(1.0, MID_LINE - 0.3)  # comes halfway in at most
        arrive = t0 + (depth - OFF_LOW) / speed
        leave = arrive + rng.uniform(0.0, 1.0)
        back = leave + (depth - OFF_LOW) / self._speed()
        return [self._body(self._direction(), [(t0, OFF_LOW), (arrive, depth), (leave, depth), (back, OFF_LOW)],
                           rng.uniform(1.5, 5.5))]


def iter_people(stream: PeopleStream) -> Iterator[Person]:  # pragma: no cover - convenience
    while True:
        yield from stream.next_episode()
