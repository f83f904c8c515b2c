"""A thermal scene simulator for an 8x8 AMG8833 over a doorway, with ground-truth crossings.

What it models (figures from real doorway recordings, see docs/simulator.md): a room
background with a per-pixel fixed pattern, slow drift, temporal noise and 0.25 °C
quantisation; a sensor on the ceiling (2.2-3.0 m) looking down through a 60° lens; people
as bodies (head, shoulders, torso, hips) of realistic size and warmth at their height,
projected through that lens, so how big and how warm a person looks follows from their
distance to the sensor and from how much of the body is inside the view; the scenario
families in :mod:`thermalcount.sensors.sim.scenarios`. The room, the sensor and each person are
drawn from ranges (domain randomisation).

Frames are rendered in blocks of ``BLOCK`` frames whose random numbers depend only on
(seed, block index), so the stream is identical however it is cut into ``generate()``
calls. Everything is rendered in a canonical geometry (people walk along axis 0, "in" =
increasing index) and turned into the requested ``travel_axis``/``reverse`` at the end, so
the ground truth and the frames cannot disagree.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from thermalcount.errors import UsageError
from thermalcount.sensors.base import SensorInfo
from thermalcount.sensors.sim.scenarios import MID_LINE, PeopleStream, Person, SceneParams, scene_params

BLOCK = 4096
SIZE = 8
SENSOR_RANGE = (0.0, 80.0)  # °C, high-gain AMG8833 object range
THERMISTOR_LSB = 0.0625
TRAVEL_AXES = ("rows", "columns")
FRAME_RATES = (1.0, 10.0)
#: Temporal noise std °C per pixel: 0.33 measured at 10 FPS (drawn per room around it);
#: the datasheet's lower noise at 1 FPS.
DEFAULT_NOISE = {10.0: (0.28, 0.38), 1.0: (0.06, 0.10)}
#: The lens: 60° across the 8 pixels, so a pixel spans tan(30°)/4 m per m of distance.
METRES_PER_PIXEL_PER_METRE = float(np.tan(np.radians(30.0)) / 4.0)
# At 1 FPS the sensor integrates longer (its noise is lower): a walker is smeared a little.
# How long exactly is not documented; +-0.2 s is an assumption (see docs/simulator.md).
BLUR_OFFSETS = {10.0: (0.0,), 1.0: (-0.2, -0.1, 0.0, 0.1, 0.2)}

# Independent random streams, so that e.g. the noise does not change the people.
_ROOM, _PEOPLE, _NOISE, _SENSOR = 1, 2, 3, 4


@dataclass
class GroundTruthEvent:
    frame: int
    time: float
    direction: str  # "in" | "out"


@dataclass
class SimChunk:
    frames: np.ndarray  # float32 (n, 8, 8) °C, quantised to 0.25
    timestamps: np.ndarray  # float64 (n,) unix seconds = start_time + index / fps
    thermistor: np.ndarray  # float32 (n,)
    events: list = field(default_factory=list)  # GroundTruthEvent in this chunk, absolute frames
    people: Optional[np.ndarray] = None  # int8 (n,) people whose centre is inside the view


@dataclass
class _Room:
    """Everything fixed per room/sensor (seeded by ``room``, or the seed)."""

    ambient: float
    pattern: np.ndarray  # (8, 8) per-pixel offsets, zero mean
    board_offset: float  # thermistor above ambient
    drift_amplitudes: np.ndarray
    drift_periods: np.ndarray
    drift_phases: np.ndarray
    warm_object: Optional[np.ndarray]  # (8, 8) added °C, or None
    ceiling: float  # m, sensor above the floor
    optics_blur: float  # px, std of the lens's spread
    noise: float  # °C, temporal noise std


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and scipy is not a runtime dependency.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def pixel_weights(centres, sigma) -> np.ndarray:
    """(m,) centres -> (m, 8): a Gaussian of ``sigma`` px (a number or (m,)) integrated over
    each pixel, scaled so that a blob centred on a pixel gives that pixel weight 1 (a
    thermopile pixel averages the warmth over its area)."""
    edges = np.arange(SIZE + 1) - 0.5
    width = np.broadcast_to(np.asarray(sigma, dtype=float) * np.sqrt(2.0), np.shape(centres))[:, None]
    z = (edges[None, :] - np.asarray(centres, dtype=float)[:, None]) / width
    # erf differences are twice the probability mass; so is the centred reference: ratio is exact.
    return np.diff(_erf(z), axis=1) / (2.0 * _erf(0.5 / width))


def pixel_mass(centres, sigma) -> np.ndarray:
    """(m,) centres, (m,) std in px -> (m, 8): the share of a Gaussian falling on each pixel.

    What is outside the view (-0.5..7.5) falls on no pixel: a body half outside the view
    shows half its warmth."""
    edges = np.arange(SIZE + 1) - 0.5
    z = (edges[None, :] - np.asarray(centres, dtype=float)[:, None]) / (np.asarray(sigma, dtype=float)[:, None] * np.sqrt(2.0))
    return np.diff(_erf(z), axis=1) / 2.0


#: No pixel reads warmer than the warmest surface it sees: bare skin, nine tenths of the way
#: from the room to 34 °C. Body parts are summed, so where they overlap (a head over the
#: shoulders, two people side by side, a tall person close under a low sensor) the sum is
#: bent down to this cap instead of adding up to more than a body can show.
SURFACE_CAP = 0.9
_KNEE = 4.0


def saturate(warmth: np.ndarray, cap) -> np.ndarray:
    """warmth / (1 + (warmth/cap)^4)^(1/4): linear well below ``cap``, never above it."""
    return warmth / (1.0 + (warmth / cap) ** _KNEE) ** (1.0 / _KNEE)


def _whole_number(name: str, value) -> int:
    # numpy seeds must be non-negative integers; say so instead of failing inside numpy.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise UsageError(f"{name} must be a whole number >= 0 (got {value!r})")
    return int(value)


class Simulator:
    """An endless, deterministic stream of simulated frames with ground-truth crossings."""

    def __init__(self, scenario: str = "mixed", *, seed: int = 0, fps: float = 10.0,
                 travel_axis: str = "rows", reverse: bool = False, ambient: Optional[float] = None,
                 drift: Optional[float] = None, noise: Optional[float] = None,
                 start_time: float = 1_700_000_000.0, **overrides):
        if travel_axis not in TRAVEL_AXES:
            raise UsageError(f"travel axis must be one of: {', '.join(TRAVEL_AXES)} (got {travel_axis!r})")
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            fps = -1.0
        if fps not in FRAME_RATES:
            raise UsageError(f"the AMG8833 runs at 10 or 1 FPS; got fps={fps!r}")
        for name, value in (("ambient", ambient), ("drift", drift), ("noise", noise)):
            if value is not None:
                overrides[name] = float(value)
        self.scenario = scenario
        self.params: SceneParams = scene_params(scenario, overrides)
        self.ambient_given = ambient is not None or "ambient" in overrides
        self.seed = _whole_number("seed", seed)
        if self.params.room is not None:
            self.params.room = _whole_number("room", self.params.room)
        self.fps = fps
        self.travel_axis = travel_axis
        self.reverse = bool(reverse)
        self.start_time = float(start_time)
        if (self.params.noise is not None and self.params.noise < 0) or self.params.drift < 0:
            raise UsageError("noise and drift must be zero or positive")
        self.room = self._make_room()
        self.noise = self.room.noise
        # A room keeps its own head count: mounted the other way round, the sensor sees the
        # same people come in (docs/simulator.md, "Ground truth").
        self._people = PeopleStream(self.params, np.random.default_rng([self.seed, _PEOPLE]),
                                    inward=-1 if self.reverse and self.params.room_occupancy else 1)
        self._active: list[Person] = []  # people generated so far that may still be in view
        self._pending: list[tuple[int, float, str]] = []  # (frame, time, direction), sorted
        self._position = 0
        self._block_index = -1
        self._block: Optional[tuple] = None

    # -- public ----------------------------------------------------------------------------
    @property
    def frames_generated(self) -> int:
        return self._position

    def generate(self, n_frames: int) -> SimChunk:
        """The next ``n_frames`` frames of the stream (successive calls continue it)."""
        if not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
            raise UsageError(f"n_frames must be a whole number >= 0 (got {n_frames!r})")
        n = int(n_frames)
        frames = np.empty((n, SIZE, SIZE), dtype=np.float32)
        thermistor = np.empty(n, dtype=np.float32)
        people = np.empty(n, dtype=np.int8)
        done = 0
        while done < n:
            absolute = self._position + done
            block = absolute // BLOCK
            if block != self._block_index:
                self._block = self._render_block(block)
                self._block_index = block
            offset = absolute - block * BLOCK
            take = min(n - done, BLOCK - offset)
            block_frames, block_thermistor, block_people = self._block
            frames[done:done + take] = block_frames[offset:offset + take]
            thermistor[done:done + take] = block_thermistor[offset:offset + take]
            people[done:done + take] = block_people[offset:offset + take]
            done += take
        first, end = self._position, self._position + n
        timestamps = self.start_time + np.arange(first, end, dtype=np.float64) / self.fps
        cut = bisect.bisect_left(self._pending, (end,))
        events = [GroundTruthEvent(f, t, d) for f, t, d in self._pending[:cut] if f >= first]
        del self._pending[:cut]
        self._position = end
        return SimChunk(frames, timestamps, thermistor, events, people)

    # -- the room --------------------------------------------------------------------------
    def _make_room(self) -> _Room:
        p = self.params
        rng = np.random.default_rng([self.seed if p.room is None else int(p.room), _ROOM])
        ambient = p.ambient + (0.0 if self.ambient_given else rng.uniform(-1, 1) * p.ambient_jitter)
        # Fixed pattern: a smooth tilt and vignetting plus per-pixel scatter, as real arrays show.
        y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) - 0.5
        smooth = rng.normal() * x + rng.normal() * y + rng.normal() * (x * x + y * y)
        pattern = smooth + rng.normal(0, 0.35, (SIZE, SIZE))
        # Measured: the per-pixel background spreads 1.5 °C (p5-p95), 2.0 °C on a warm day.
        spread = rng.uniform(1.0, 2.2) if p.fixed_pattern is None else float(p.fixed_pattern)
        p5, p95 = np.percentile(pattern, [5, 95])
        pattern = (pattern - pattern.mean()) / max(p95 - p5, 1e-9) * spread
        periods = p.drift_period * np.array([1.0, rng.uniform(0.4, 0.6), rng.uniform(0.15, 0.3)])
        weights = np.array([1.0, 0.5, 0.25])
        amplitudes = weights / weights.sum() * p.drift / 2.0  # the sum never exceeds ±drift/2
        phases = rng.uniform(0, 2 * np.pi, 3)
        warm_object = None
        if rng.random() < p.warm_object_prob:  # a laptop (~+5 °C, small) or radiator (hotter, wider)
            u, v = rng.uniform(0.0, 7.0, 2)
            sigma = rng.uniform(0.5, 1.1)
            warm_object = rng.uniform(3.0, 9.0) * np.outer(pixel_weights([u], sigma)[0],
                                                          pixel_weights([v], sigma)[0])
        # The sensor's own draws come from a stream of their own, so that overriding the
        # ambient, the pattern or the warm object leaves the ceiling, lens and noise alone.
        sensor = np.random.default_rng([self.seed if p.room is None else int(p.room), _ROOM, _SENSOR])
        ceiling = sensor.uniform(*p.ceiling)
        blur = sensor.uniform(*p.optics_blur)
        noise = sensor.uniform(*DEFAULT_NOISE[self.fps]) if p.noise is None else float(p.noise)
        return _Room(ambient, pattern.astype(np.float32), rng.uniform(1.0, 3.0), amplitudes, periods,
                     phases, warm_object, ceiling, blur, noise)

    def background_level(self, seconds: np.ndarray) -> np.ndarray:
        """Mean background in °C (ambient + drift) at ``seconds`` since the stream start."""
        r = self.room
        t = np.asarray(seconds, dtype=float)[..., None]
        wave = np.sin(2 * np.pi * t / r.drift_periods + r.drift_phases) * r.drift_amplitudes
        return r.ambient + wave.sum(axis=-1)

    # -- rendering ---------------------------------------------------------------------------
    def _people_until(self, seconds: float) -> None:
        while self._people.cursor <= seconds:
            for person in self._people.next_episode():
                self._active.append(person)
                self._add_events(person)

    def _add_events(self, person: Person) -> None:
        """One event per person who ends on the other side of the mid line than they started.

        It falls on the frame of their LAST crossing: someone who sways across the line while
        standing in the doorway has crossed once, when they finally walk on. People who go
        back where they came from (turn-backs, returning lingerers) have no event.
        """
        first = int(np.floor(person.start * self.fps))
        last = int(np.ceil(person.end * self.fps)) + 1
        idx = np.arange(first, last + 1)
        beyond = person.travel(idx / self.fps) >= MID_LINE
        changes = np.flatnonzero(beyond[1:] != beyond[:-1]) + 1
        if beyond[0] == beyond[-1] or len(changes) == 0:
            return
        frame = int(idx[changes[-1]])
        forward = bool(beyond[-1])  # ended at increasing u
        if self.reverse:
            forward = not forward
        bisect.insort(self._pending, (frame, self.start_time + frame / self.fps, "in" if forward else "out"))

    def _render_block(self, block: int) -> tuple:
        first = block * BLOCK
        seconds = (first + np.arange(BLOCK)) / self.fps
        t_end = seconds[-1] + 1.0
        self._people_until(t_end)
        self._active = [p for p in self._active if p.end >= seconds[0] - 1.0]

        level = self.background_level(seconds)
        frames = np.empty((BLOCK, SIZE, SIZE), dtype=np.float32)
        frames[:] = self.room.pattern
        frames += level.astype(np.float32)[:, None, None]
        if self.room.warm_object is not None:
            frames += self.room.warm_object.astype(np.float32)
        # People stand out less the warmer the room: a surface's contrast is a fraction of
        # (skin - background).
        contrast = np.maximum(self.params.skin_temperature - level, 0.5)
        people, warmth = self._render_people(seconds, first, contrast)
        frames += saturate(warmth, SURFACE_CAP * contrast[:, None]).reshape(BLOCK, SIZE, SIZE).astype(np.float32)

        noise_rng = np.random.default_rng([self.seed, _NOISE, block])
        if self.noise > 0:
            frames += noise_rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(self.noise)
        q = self.params.quantum
        if q > 0:
            frames = np.round(frames * np.float32(1.0 / q)) * np.float32(q)
        np.clip(frames, *SENSOR_RANGE, out=frames)
        board = level + self.room.board_offset + noise_rng.normal(0, 0.05, BLOCK)
        thermistor = (np.round(board / THERMISTOR_LSB) * THERMISTOR_LSB).astype(np.float32)

        if self.reverse:
            frames = frames[:, ::-1, :]
        if self.travel_axis == "columns":
            frames = frames.transpose(0, 2, 1)
        return np.ascontiguousarray(frames), thermistor, people


    def _render_people(self, seconds: np.ndarray, first: int, contrast: np.ndarray) -> tuple:
        """People in view per frame, and their warmth (BLOCK, 64), for one block.

        All people's samples are rendered in one vectorised pass: at 1 FPS a block holds
        hundreds of people of a few frames each, where a per-person loop would dominate.
        Body parts are stacked top down (head, shoulders, torso, hips): a part shows only
        where the parts above it leave the pixel uncovered.
        """
        offsets = BLUR_OFFSETS[self.fps]
        spans, in_view = [], []
        parts: list = [[] for _ in range(BODY_PARTS)]  # per part: (u, v, su, sv, cover, warmth)
        for person in self._active:
            i0 = max(0, int(np.floor((person.start - 0.5) * self.fps)) - first)
            i1 = min(BLOCK, int(np.ceil((person.end + 0.5) * self.fps)) + 1 - first)
            if i1 <= i0:
                continue
            t = seconds[i0:i1]
            head_u = to_pixels(person.travel(t), self.room.ceiling - person.body.height)
            in_view.append(np.arange(i0, i1)[(head_u >= -0.5) & (head_u <= SIZE - 0.5)])
            for dt in offsets:
                spans.append((i0, i1))
                pieces = body_parts(person, t + dt, self.room.ceiling, self.room.optics_blur)
                for part, (u, v, su, sv, cover, warmth) in zip(parts, pieces):
                    part.append((u, v, su, sv, cover, warmth * contrast[i0:i1] / len(offsets)))
        blobs_all = np.zeros((BLOCK, SIZE * SIZE))
        if not spans:
            return np.zeros(BLOCK, dtype=np.int8), blobs_all
        people = np.bincount(np.concatenate(in_view), minlength=BLOCK).astype(np.int8)
        blobs, uncovered = 0.0, 1.0
        for part in parts:  # top down
            u, v, su, sv, cover, warmth = (np.concatenate(column) for column in zip(*part))
            share = (pixel_mass(u, su) * cover[:, None])[:, :, None] * pixel_mass(v, sv)[:, None, :]
            share = np.minimum(share.reshape(-1, SIZE * SIZE), 1.0)  # of each pixel's area
            blobs = blobs + warmth[:, None] * share * uncovered
            uncovered = uncovered * (1.0 - share)
        row = 0
        for i0, i1 in spans:  # each span is contiguous: a slice add beats np.add.at by far
            blobs_all[i0:i1] += blobs[row:row + i1 - i0]
            row += i1 - i0
        return people, blobs_all



def to_pixels(x, distance):
    """Metres from under the sensor, at ``distance`` m from it -> pixel coordinate (centres 0..7)."""
    return (SIZE - 1) / 2.0 + x / (distance * METRES_PER_PIXEL_PER_METRE)


BODY_PARTS = 4


def body_parts(person: Person, t: np.ndarray, ceiling: float, blur: float) -> list:
    """A person at times ``t`` as seen by the sensor, top down: [(u, v, std_u, std_v, cover,
    warmth)], one entry per body part (head, shoulders, torso, hips), each an array over ``t``.

    u, v are pixel coordinates (centres 0..7; u along the travel axis); std in px; cover the
    part's area seen from the sensor, in pixels; warmth its fraction of (skin - room). A
    pixel reads warmth x contrast x the share of its area the part covers (where no part
    above covers it), so a part further away looks smaller and gives a pixel less, and a
    part outside the view gives nothing. Top surfaces (head, shoulders) face the sensor; the
    sides of the torso and hips show more the further the person is from under the sensor
    (sin of the viewing angle), which is why a real person seen at the edge looks long and
    faint.
    """
    b = person.body
    x, y = person.travel(t), person.side(t)
    k = METRES_PER_PIXEL_PER_METRE
    # (height above the floor, half width across, half depth along, area, warmth, side-on)
    parts = (
        (b.height - b.head_radius, b.head_radius, b.head_radius, np.pi * b.head_radius ** 2, b.head_warmth, False),
        (b.height - 0.27, b.shoulder_half_width, b.shoulder_half_depth,
         np.pi * b.shoulder_half_width * b.shoulder_half_depth, b.clothes_warmth, False),
        (b.height - 0.55, 0.17, 0.22, 2 * 0.17 * 0.45, b.clothes_warmth, True),
        (b.height - 1.0, 0.16, 0.25, 2 * 0.16 * 0.5, 0.8 * b.clothes_warmth, True),
    )
    out = []
    for z, half_across, half_along, area, warmth, side_on in parts:
        distance = ceiling - z
        pixel = distance * k  # m seen by one pixel at that distance
        seen = area
        if side_on:
            radial = np.hypot(x, y)
            seen = area * radial / np.hypot(radial, distance)  # sin of the viewing angle
        u, v = to_pixels(x, distance), to_pixels(y, distance)
        std_u = np.hypot(half_along / 2.0 / pixel, blur)
        std_v = np.hypot(half_across / 2.0 / pixel, blur)
        out.append((u, v, np.broadcast_to(std_u, u.shape), np.broadcast_to(std_v, u.shape),
                    np.broadcast_to(seen / pixel ** 2, u.shape), np.broadcast_to(warmth, u.shape)))
    return out


def simulate(n_frames: int, scenario: str = "mixed", seed: int = 0, **kw) -> SimChunk:
    """The first ``n_frames`` of a fresh simulator (see :class:`Simulator` for ``kw``)."""
    return Simulator(scenario, seed=seed, **kw).generate(n_frames)


@dataclass
class SimulationResult:
    """What :func:`write_simulation` wrote."""

    path: str
    frames: int
    events_in: int
    events_out: int
    seconds: float  # wall time spent
    file_bytes: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def write_simulation(path, n_frames: int, scenario: str = "mixed", *, seed: int = 0,
                     overwrite: bool = False, chunk_frames: int = 65536, progress=None,
                     **kw) -> SimulationResult:
    """Simulate ``n_frames`` into a recording at ``path`` with its ground-truth events.

    Generates and writes ``chunk_frames`` at a time, so memory stays bounded however long
    the simulation. ``progress(frames_done)`` is called after each chunk. ``kw`` goes to
    :class:`Simulator` (fps, travel_axis, reverse, ambient, room, ...).
    """
    import os
    import time

    from thermalcount.errors import OutputPathError
    from thermalcount.store import RecordingWriter  # the store is only needed for files

    if os.path.exists(path) and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it or choose another --out")
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise UsageError(f"the number of frames must be a whole number >= 0 (got {n_frames!r})")
    sim = Simulator(scenario, seed=seed, **kw)
    extra = {"scenario": scenario, "seed": sim.seed, "travel_axis": sim.travel_axis,
             "reverse": sim.reverse, "ground_truth": "simulated"}
    if sim.params.room is not None:
        extra["room"] = int(sim.params.room)
    info = SensorInfo(sensor="sim", fps=sim.fps, extra=extra)
    counts = {"in": 0, "out": 0}
    began = time.perf_counter()
    # atomic: a refused or failed run leaves an existing file as it was.
    with RecordingWriter(path, sensor_info=info, overwrite=overwrite, atomic=True) as writer:
        while sim.frames_generated < n_frames:
            chunk = sim.generate(min(chunk_frames, n_frames - sim.frames_generated))
            writer.append_many(chunk.frames, chunk.timestamps, chunk.thermistor)
            if chunk.events:
                writer.add_events([e.frame for e in chunk.events], [e.time for e in chunk.events],
                                  [e.direction for e in chunk.events])
                for event in chunk.events:
                    counts[event.direction] += 1
            if progress is not None:
                progress(sim.frames_generated)
    seconds = time.perf_counter() - began
    return SimulationResult(str(path), int(n_frames), counts["in"], counts["out"], seconds,
                            os.path.getsize(path))
