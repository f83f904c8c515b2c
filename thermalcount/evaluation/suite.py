"""The counting-accuracy suite: held-out simulated doorways with ground truth, scored.

Each :class:`Family` is one hard situation (fast walkers, people following closely, a warm
room, ...) made of several held-out recordings. :func:`run_suite` writes the recordings
through the frame store, counts them with :func:`thermalcount.runtime.offline.count_recording`
(exactly what ``thermalcount count`` does) and adds up precision/recall/F1 by direction and
the net count error per family and over the suite. ``thermalcount evaluate`` is the CLI.

Held-out means: every evaluation recording has its own people seed AND room seed (fixed
pattern, room temperature, thermistor offset, drift timing, warm object), all disjoint from
the training split :mod:`thermalcount.evaluation.training` uses and from the recipe of the
embedded default model (``thermalcount.training.default``). The tests check that.

The "room 5 °C warmer" check is reported apart from the suite totals (the issue's bar has
its own threshold for it): a model is scored in a room it was trained in, with the room
5 °C warmer than when it was trained, and new people.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from thermalcount.errors import UsageError
from thermalcount.evaluation.scoring import DEFAULT_TOLERANCE_S

SCHEMA = "thermalcount-accuracy/1"
SIZES = ("ci", "full")
#: The bar of issue 6: overall F1, F1 of the weakest family, F1 of the +5 °C room check.
BAR = {"overall_f1": 0.99, "hardest_family_f1": 0.97, "room_plus5_f1": 0.95}

#: Held-out seeds and rooms: recording j of family number n uses seed EVAL_SEED_BASE +
#: 100 n + j and room EVAL_ROOM_BASE + 100 n + j (at most 100 recordings per family).
EVAL_SEED_BASE = 700_000
EVAL_ROOM_BASE = 800_000
MAX_RECORDINGS = 100
#: How much warmer the room of the "room +5 °C" check is than when the model was trained.
WARMER_BY = 5.0

_MIX = {"single": 0.6, "following": 0.2, "passing": 0.2}


@dataclass(frozen=True)
class Family:
    """One scenario family: how its recordings are simulated, and how many at each size."""

    name: str
    number: int  # fixes the family's seeds and rooms; never reuse or renumber
    description: str
    scenario: str
    params: dict = field(default_factory=dict)  # simulator overrides
    fps: float = 10.0
    travel_axis: str = "rows"
    reverse: bool = False
    #: size -> (recordings, frames per recording)
    sizes: dict = field(default_factory=dict)
    #: "suite" families make the totals; "room_plus5" is the separate warm-room check.
    kind: str = "suite"

    def recordings(self, size: str) -> list:
        """[(seed, room, frames)] of this family's held-out recordings at ``size``."""
        count, frames = self.sizes[size]
        return [(EVAL_SEED_BASE + 100 * self.number + j, EVAL_ROOM_BASE + 100 * self.number + j, frames)
                for j in range(count)]


def _sizes(ci: tuple, full: tuple) -> dict:
    return {"ci": ci, "full": full}


# Frames per recording are chosen so that "full" gives >= ~480 true events per family (F1
# to two decimals: one error moves it by ~0.002) and "ci" a quarter of that (>= 110, in
# half the rooms); tests/test_evaluation.py checks both floors. Event rates differ a lot: a lingerer
# produces an event only half the time, after seconds of standing; a 1 FPS frame is 1 s.
FAMILIES: tuple = (
    Family("single_slow", 1, "one person at a time, slow walkers (0.5-0.75 m/s), both ways",
           "single", {"speed_mix": (1.0, 0.0, 0.0)}, sizes=_sizes((4, 5850), (8, 11450))),
    Family("single_normal", 2, "one person at a time, normal walkers (0.75-1.1 m/s), both ways",
           "single", {"speed_mix": (0.0, 1.0, 0.0)}, sizes=_sizes((4, 4900), (8, 9450))),
    Family("single_fast", 3, "one person at a time, fast walkers (1.1-1.5 m/s), both ways",
           "single", {"speed_mix": (0.0, 0.0, 1.0)}, sizes=_sizes((4, 3950), (8, 7900))),
    Family("following", 4, "two people the same way, back to back: crossing 0.7-1.4 s apart", "following",
           sizes=_sizes((4, 2400), (8, 4450))),
    Family("passing", 5, "two people passing side by side in opposite directions", "passing",
           sizes=_sizes((4, 2250), (8, 4550))),
    Family("lingering", 6, "a person stands 0.05-0.3 m before the door line for 2-8 s, then "
           "continues or goes back", "lingering", sizes=_sizes((4, 11200), (8, 23250))),
    Family("turnback", 7, "people come up to the door line and return (no event), between crossings",
           "turnback", sizes=_sizes((4, 12325), (8, 22150))),
    Family("low_contrast", 8, "everyone in hats or hoods (a cooler head), 23.5 °C room",
           "low_contrast", sizes=_sizes((4, 3650), (8, 7400))),
    Family("warm_room", 9, "a 26-28 °C room: people stand out by half as much as at 21 °C", "warm_room",
           sizes=_sizes((4, 3400), (8, 7300))),
    Family("drift", 10, "the background wanders 6 °C peak to peak, slowest period 10 min "
           "(4-5.5 °C within each recording)", "drift",
           {"drift": 6.0, "drift_period": 600.0}, sizes=_sizes((4, 5100), (8, 10200))),
    Family("warm_object", 11, "a static warm patch (laptop, radiator, +3 to +9 °C) in view",
           "warm_object", sizes=_sizes((4, 3575), (8, 7200))),
    Family("other_mounting", 12, "sensor turned: people walk along the columns, and the "
           "board is mounted the other way round (in/out mirrored)", "single",
           {"episodes": _MIX}, travel_axis="columns", reverse=True, sizes=_sizes((4, 3300), (8, 6900))),
    Family("fps1", 13, "the AMG8833's 1 FPS mode: a crossing spans ~2 frames", "single",
           fps=1.0, sizes=_sizes((4, 550), (8, 1000))),
    Family("room_plus5", 14, "a room the model was trained in, 5 °C warmer than at training, "
           "new people (not in the suite totals: a separate bar)", "single",
           {"episodes": _MIX}, kind="room_plus5", sizes=_sizes((4, 3825), (8, 6950))),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)


def family(name: str) -> Family:
    for item in FAMILIES:
        if item.name == name:
            return item
    raise UsageError(f"unknown family {name!r}; choose from: {', '.join(FAMILY_NAMES)}")


def select_families(names=None) -> list:
    """The families named (all when empty), in suite order; unknown names raise UsageError."""
    if not names:
        return list(FAMILIES)
    wanted = {family(n).name for n in names}
    return [f for f in FAMILIES if f.name in wanted]


def check_size(size: str) -> str:
    if size not in SIZES:
        raise UsageError(f"unknown size {size!r}; use ci or full")
    return size


def heldout_seeds_and_rooms(size: str = "full") -> tuple:
    """(seeds, rooms): every people seed and room seed the suite evaluates on at ``size``."""
    seeds, rooms = set(), set()
    for item in FAMILIES:
        for seed, room, _ in item.recordings(size):
            seeds.add(seed)
            rooms.add(room)
    return seeds, rooms


# --------------------------------------------------------------------------------- models


@dataclass
class EvalModel:
    """A model the suite counts with, and how a user would make it fit a family."""

    path: Optional[str]  # None: the embedded default model
    label: str  # "default", a path, or "trained:rows" ...
    travel_axis: str
    #: The room this model was trained in that the +5 °C check warms up: (room, scenario,
    #: ambient at training), or None when the model cannot say (a model file from elsewhere).
    warm_check_room: Optional[tuple] = None
    #: True: a family mounted along the other axis is turned to this model's axis (what a
    #: user of a ready-made model does). False for a model trained on that mounting's own
    #: recordings: it gets the frames as recorded, whatever axis training found.
    turns_frames: bool = True


@dataclass
class ModelSet:
    """Which model counts which family (``--train`` trains one per mounting)."""

    main: EvalModel
    by_axis: dict = field(default_factory=dict)  # travel axis -> EvalModel of that mounting
    plus5: Optional[EvalModel] = None  # model for the +5 °C check; None: main
    training: dict = field(default_factory=dict)  # what --train did (JSON summary)

    def for_family(self, item: Family) -> EvalModel:
        if item.kind == "room_plus5" and self.plus5 is not None:
            return self.plus5
        return self.by_axis.get(item.travel_axis, self.main)


def given_model(path=None) -> ModelSet:
    """The model at ``path`` (None or "default": the embedded one) for every family.

    The +5 °C check needs a room the model was trained in: for the embedded model, and for
    any model trained on the default model's recipe (a candidate default model), it is the
    first room of that recipe; other models have none and the check is skipped.
    """
    from thermalcount.model.loader import Model

    default = path is None or str(path) == "default"
    loaded = Model.load(None if default else path, backend="numpy")
    warm = default_model_warm_room() if default or trained_on_default_recipe(loaded.metadata) else None
    model = EvalModel(None if default else str(path), "default" if default else str(path),
                      loaded.travel_axis, warm)
    return ModelSet(main=model)


def trained_on_default_recipe(metadata: dict) -> bool:
    """True when the model's training summary names exactly the default recipe's sources."""
    import json

    from thermalcount.training.recipe import source_names

    try:
        names = [entry["name"] for entry in json.loads(metadata.get("training", "{}")).get("files", [])]
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
    return bool(names) and names == source_names()


def default_model_recordings() -> list:
    """[(scenario, seed, room, keywords)] the embedded default model was trained on.

    Read from ``thermalcount.training.recipe.RECIPE`` as ``default_sources()`` builds it
    (seed ``SEED + index``; the room is the seed unless the recipe names one).
    """
    from thermalcount.training.recipe import RECIPE, SEED

    out = []
    for index, (scenario, _frames, keywords) in enumerate(RECIPE):
        seed = SEED + index
        out.append((scenario, seed, int(keywords.get("room", seed)), dict(keywords)))
    return out


def default_model_warm_room() -> tuple:
    """(room, scenario, ambient) of the default model's first 10 FPS training room at its own
    room temperature: the room the +5 °C check warms up."""
    for scenario, seed, room, keywords in default_model_recordings():
        if float(keywords.get("fps", 10.0)) == 10.0 and "ambient" not in keywords:
            return room, scenario, room_ambient(scenario, room)
    raise UsageError("the default model's recipe has no 10 FPS room at its own temperature")


def room_ambient(scenario: str, room: int, **params) -> float:
    """The room temperature the simulator gives ``room`` in ``scenario`` (no people needed)."""
    from thermalcount.sensors.sim.simulator import Simulator

    return float(Simulator(scenario, seed=0, room=room, **params).room.ambient)


# ------------------------------------------------------------------------------ recordings


@dataclass
class RecordingSpec:
    family: str
    seed: int
    room: int
    frames: int
    scenario: str
    keywords: dict  # everything else for the simulator (fps, travel_axis, reverse, overrides)
    orientation: Optional[str] = None  # applied to the frames as `record --orientation` would


def recording_specs(item: Family, size: str, model: EvalModel) -> list:
    """The recordings of ``item`` at ``size`` as ``model`` needs them.

    A model that knows only one travel axis meets the other mounting the way a user fixes
    it: the sensor's frames are turned (``--orientation rotate=90`` or ``rotate=270``) so
    people walk along the model's axis. Turning keeps the direction of travel, so the truth
    is unchanged.
    """
    keywords = dict(item.params, fps=item.fps, travel_axis=item.travel_axis, reverse=item.reverse)
    orientation = None
    if model.turns_frames and item.travel_axis != model.travel_axis:
        # rotate=90 takes column c to row c; rotate=270 takes row r to column r.
        orientation = "rotate=90,mirror=none" if model.travel_axis == "rows" else "rotate=270,mirror=none"
    specs = []
    for seed, room, frames in item.recordings(size):
        if item.kind == "room_plus5":
            if model.warm_check_room is None:
                raise UsageError("the +5 °C room check needs to know a room the model was trained in; "
                                 "use the default model or --train, or leave out --family room_plus5")
            trained_room, _scenario, ambient = model.warm_check_room
            room = trained_room  # the same room (fixed pattern, drift, thermistor), warmer
            keywords["ambient"] = round(ambient + WARMER_BY, 3)
        specs.append(RecordingSpec(item.name, seed, room, frames, item.scenario, dict(keywords), orientation))
    return specs


def write_recording(spec: RecordingSpec, path: Path) -> dict:
    """Simulate ``spec`` into ``path`` through the frame store; returns facts about it."""
    from thermalcount.sensors.sim.simulator import Simulator, write_simulation

    kw = dict(spec.keywords, room=spec.room)
    if spec.orientation is None:
        write_simulation(path, spec.frames, spec.scenario, seed=spec.seed, **kw)
    else:
        _write_oriented(path, spec, kw)
    sim = Simulator(spec.scenario, seed=spec.seed, **kw)
    level = sim.background_level(np.arange(spec.frames) / sim.fps)
    return {"seed": spec.seed, "room": spec.room, "frames": spec.frames,
            "ambient_c": round(float(sim.room.ambient), 2),
            "background_c": [round(float(level.min()), 2), round(float(level.max()), 2)],
            "warm_object": sim.room.warm_object is not None}


def _write_oriented(path: Path, spec: RecordingSpec, kw: dict) -> None:
    """As ``write_simulation``, with the frames turned the way ``record --orientation`` stores them."""
    from thermalcount.sensors.base import SensorInfo
    from thermalcount.sensors.conversions import parse_orientation
    from thermalcount.sensors.sim.simulator import Simulator
    from thermalcount.store import RecordingWriter

    turn = parse_orientation(spec.orientation)
    sim = Simulator(spec.scenario, seed=spec.seed, **kw)
    info = SensorInfo(sensor="sim", fps=sim.fps, orientation=str(turn), extra={
        "scenario": spec.scenario, "seed": spec.seed, "room": spec.room, "travel_axis": sim.travel_axis,
        "reverse": sim.reverse, "ground_truth": "simulated"})
    with RecordingWriter(path, sensor_info=info) as writer:
        while sim.frames_generated < spec.frames:
            chunk = sim.generate(min(65536, spec.frames - sim.frames_generated))
            writer.append_many(turn.apply(chunk.frames), chunk.timestamps, chunk.thermistor)
            if chunk.events:
                writer.add_events([e.frame for e in chunk.events], [e.time for e in chunk.events],
                                  [e.direction for e in chunk.events])


# ---------------------------------------------------------------------------------- scoring


def error_kinds(predicted: list, truth: list, score: dict, tolerance: float) -> dict:
    """Why a recording's events were wrong: ``wrong_direction`` counted events that match a
    true event in time but not in direction (the extra matches found when direction is
    ignored), ``missed`` the other false negatives, ``extra`` the other false positives."""
    from thermalcount.evaluation.scoring import match_times

    anyway = match_times([float(e.time) for e in predicted], [float(e.time) for e in truth], tolerance)
    wrong = anyway - score["overall"]["tp"]
    return {"missed": score["overall"]["fn"] - wrong, "extra": score["overall"]["fp"] - wrong,
            "wrong_direction": wrong}


def aggregate(scores: list) -> dict:
    """Add up per-recording ``score_events`` results: matches are summed, rates recomputed.

    ``net_count_error`` is per recording (counted (in - out) minus true (in - out));
    ``net_error_abs`` sums their absolute values, so errors in two recordings never cancel.
    """
    # evaluation.scoring's own rates, so totals follow its conventions for empty sets.
    from thermalcount.evaluation.scoring import _rates

    out: dict = {}
    for key in ("in", "out", "overall"):
        tp = sum(s[key]["tp"] for s in scores)
        fp = sum(s[key]["fp"] for s in scores)
        fn = sum(s[key]["fn"] for s in scores)
        out[key] = _rates(tp, fp, fn)
    for key in ("true_entries", "true_exits", "counted_entries", "counted_exits"):
        out[key] = sum(int(s[key]) for s in scores)
    out["true_events"] = out["true_entries"] + out["true_exits"]
    if all("errors" in s for s in scores):
        out["errors"] = {k: sum(s["errors"][k] for s in scores) for k in ("missed", "extra", "wrong_direction")}
    out["net_count_error"] = [int(s["net_count_error"]) for s in scores]
    out["net_error_abs"] = sum(abs(e) for e in out["net_count_error"])
    return out


def weakest(families: list) -> Optional[dict]:
    """The suite family with the lowest overall F1 (first in suite order on a tie)."""
    suite = [f for f in families if f["kind"] == "suite"]
    if not suite:
        return None
    worst = min(suite, key=lambda f: f["overall"]["f1"])
    return {"name": worst["name"], "f1": worst["overall"]["f1"]}


def bar_verdict(report: dict) -> dict:
    """Which parts of the issue's bar this report meets (None: not measured)."""
    totals, worst = report.get("totals"), report.get("weakest")
    plus5 = [f for f in report["families"] if f["kind"] == "room_plus5"]
    verdict = {
        "overall_f1": None if totals is None else totals["overall"]["f1"] >= BAR["overall_f1"],
        "hardest_family_f1": None if worst is None else worst["f1"] >= BAR["hardest_family_f1"],
        "room_plus5_f1": None if not plus5 else plus5[0]["overall"]["f1"] >= BAR["room_plus5_f1"],
    }
    verdict["met"] = all(v is True for v in verdict.values())
    return verdict


# ------------------------------------------------------------------------------------ runner


def run_suite(models: ModelSet, *, size: str = "ci", families=None, keep: Optional[Path] = None,
              progress: Optional[Callable[[str], None]] = None,
              tolerance: float = DEFAULT_TOLERANCE_S) -> dict:
    """Write, count and score every recording of ``families`` at ``size``; the JSON report.

    Recordings go into ``keep`` (kept) or a temporary directory (removed). ``progress(text)``
    gets one line per recording.
    """
    check_size(size)
    chosen = select_families(families)
    skipped = []
    if not families:  # all families: leave out what these models cannot measure, and say so
        for item in [f for f in chosen if f.kind == "room_plus5" and models.for_family(f).warm_check_room is None]:
            chosen.remove(item)
            skipped.append({"name": item.name, "reason": "the model's training room is unknown (only the default "
                                                          "model, models on its recipe and --train know theirs)"})
    began = time.perf_counter()
    say = progress or (lambda text: None)
    results, suite_scores = [], []
    with tempfile.TemporaryDirectory(prefix="thermalcount-eval-") as scratch:
        folder = Path(keep) if keep is not None else Path(scratch)
        for item in chosen:
            result, scores = _run_family(item, models.for_family(item), size, folder, keep is not None,
                                         tolerance, say)
            results.append(result)
            if item.kind == "suite":
                suite_scores += scores
    totals = None
    if suite_scores:
        totals = aggregate(suite_scores)
        suite = [r for r in results if r["kind"] == "suite"]
        totals.update(frames=sum(r["frames"] for r in suite), families=len(suite))
    report = {
        "schema": SCHEMA, "size": size, "tolerance_s": tolerance,
        "model": models.main.label, "training": models.training or None,
        "families": results, "skipped": skipped, "totals": totals,
        "weakest": weakest(results),
        "bar": dict(BAR),
        "seconds": round(time.perf_counter() - began, 2),
    }
    report["verdict"] = bar_verdict(report)
    return report


def _run_family(item: Family, model: EvalModel, size: str, folder: Path, kept: bool, tolerance: float,
                say: Callable[[str], None]) -> tuple:
    """(the family's part of the report, its per-recording scores)."""
    from thermalcount.evaluation.scoring import score_result
    from thermalcount.runtime.offline import count_recording

    began = time.perf_counter()
    specs = recording_specs(item, size, model)
    scores, recordings, frames = [], [], 0
    for index, spec in enumerate(specs):
        path = folder / f"{item.name}-{index}.h5"
        say(f"{item.name}: recording {index + 1}/{len(specs)} ({spec.frames:,} frames, "
            f"seed {spec.seed}, room {spec.room})")
        facts = write_recording(spec, path)
        counted = count_recording(path, model=model.path)
        score = score_result(counted, tolerance)
        score = dict(score, errors=error_kinds(counted.events, counted.truth, score, tolerance))
        scores.append(score)
        facts.update(path=str(path) if kept else None, f1=score["overall"]["f1"],
                     net_count_error=score["net_count_error"], true_events=counted.truth_events,
                     counted_events=len(counted.events), errors=score["errors"])
        recordings.append(facts)
        frames += counted.frames
    result = dict(name=item.name, kind=item.kind, description=item.description, scenario=item.scenario,
                  fps=item.fps, travel_axis=item.travel_axis, reverse=item.reverse, model=model.label,
                  orientation=specs[0].orientation if specs else None, frames=frames, recordings=recordings,
                  seconds=round(time.perf_counter() - began, 2), **aggregate(scores))
    return result, scores


__all__ = ["FAMILIES", "FAMILY_NAMES", "SIZES", "BAR", "Family", "EvalModel", "ModelSet", "given_model",
           "run_suite", "aggregate", "weakest", "bar_verdict", "select_families", "heldout_seeds_and_rooms",
           "default_model_recordings"]
