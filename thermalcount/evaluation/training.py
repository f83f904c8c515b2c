"""``thermalcount evaluate --train``: simulate a training split, train and export as a user would.

Three models, each trained with the standard pipeline (recordings written through the frame
store, :func:`thermalcount.training.train.train` on the files, then
:func:`thermalcount.model.export.export_model` to ONNX) with the default model's
options (``thermalcount.training.default.default_options``) and the default model's
scenario recipe, but on this module's own seeds and rooms:

* ``rows``: the sensor as most people mount it (people walk along the rows); counts every
  family except the other mounting;
* ``columns``: a user who mounted the sensor turned and the other way round records their
  own doorway; training finds the travel axis from the data (``travel_axis="auto"``);
  counts the ``other_mounting`` family;
* ``one_room``: a user's own doorway, recorded in ONE room at that room's temperature
  (drift at most 1 °C, every recording at the same ambient, no warm object, 10 FPS only);
  counts the +5 °C check in that room made 5 °C warmer.

Training seeds and rooms never meet the suite's held-out ones (tests check it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from thermalcount.evaluation.suite import EvalModel, ModelSet, room_ambient

#: Recipe entry i of the default model's recipe is simulated with seed BASE + i and room
#: ROOM_BASE + i for each trained model (one-room: the same ONE_ROOM for every entry).
TRAIN_SEEDS = {"rows": 500_000, "columns": 510_000, "one_room": 520_000}
TRAIN_ROOMS = {"rows": 600_000, "columns": 610_000}
ONE_ROOM = 620_000
ONE_ROOM_SCENARIO = "single"  # only fixes the room temperature: 21 °C +- 0.8 jitter
#: Background wander (peak to peak, °C) allowed in the one-room training recordings: a room
#: over an afternoon, not the 5 °C the check then adds.
ONE_ROOM_DRIFT = 1.0


def training_plan() -> dict:
    """model name -> [(scenario, frames, seed, room, simulator keywords)], deterministic."""
    from thermalcount.training.recipe import RECIPE

    plan = {"rows": [], "columns": [], "one_room": []}
    one_room_ambient = room_ambient(ONE_ROOM_SCENARIO, ONE_ROOM)
    for index, (scenario, frames, keywords) in enumerate(RECIPE):
        base = {k: v for k, v in keywords.items() if k != "room"}
        plan["rows"].append((scenario, frames, TRAIN_SEEDS["rows"] + index, TRAIN_ROOMS["rows"] + index,
                             dict(base, travel_axis="rows")))
        plan["columns"].append((scenario, frames, TRAIN_SEEDS["columns"] + index,
                                TRAIN_ROOMS["columns"] + index,
                                dict(base, travel_axis="columns", reverse=not base.get("reverse", False))))
        if float(base.get("fps", 10.0)) != 10.0:
            continue  # a user's own doorway: one frame rate
        # The room's own temperature, drift and furniture: a warm object would make the
        # warm_object recipe entry a different room from the others.
        one = dict(base, travel_axis="rows", ambient=one_room_ambient, warm_object_prob=0.0,
                   drift=min(ONE_ROOM_DRIFT, _scenario_drift(scenario)))
        plan["one_room"].append((scenario, frames, TRAIN_SEEDS["one_room"] + index, ONE_ROOM, one))
    return plan


def _scenario_drift(scenario: str) -> float:
    from thermalcount.sensors.sim.scenarios import scene_params

    return float(scene_params(scenario, {}).drift)


def training_seeds_and_rooms() -> tuple:
    """(seeds, rooms) of every recording ``--train`` trains on."""
    seeds, rooms = set(), set()
    for entries in training_plan().values():
        for _, _, seed, room, _ in entries:
            seeds.add(seed)
            rooms.add(room)
    return seeds, rooms


def train_models(folder: Path, *, names=("rows", "columns", "one_room"),
                 progress: Optional[Callable[[str], None]] = None) -> ModelSet:
    """Simulate, train and export the models in ``names`` into ``folder``; the ModelSet."""
    from thermalcount.training import require_training_stack

    require_training_stack()  # one clear line before minutes of simulation
    from thermalcount.sensors.sim.simulator import write_simulation
    from thermalcount.training.default import default_options
    from thermalcount.model.export import export_model
    from thermalcount.training.train import train

    say = progress or (lambda text: None)
    folder = Path(folder)
    plan = training_plan()
    models, summary = {}, {}
    for name in names:
        began = time.perf_counter()
        paths = []
        for index, (scenario, frames, seed, room, keywords) in enumerate(plan[name]):
            path = folder / f"train-{name}-{index}.h5"
            write_simulation(path, frames, scenario, seed=seed, room=room, **keywords)
            paths.append(path)
        total = sum(entry[1] for entry in plan[name])
        say(f"training the {name} model on {len(paths)} recordings ({total:,} frames)")
        model_file, onnx_file = folder / f"model-{name}.npz", folder / f"model-{name}.onnx"
        result = train(paths, model_file, default_options())
        export_model(model_file, onnx_file)
        warm = None
        if name == "one_room":
            warm = (ONE_ROOM, ONE_ROOM_SCENARIO, room_ambient(ONE_ROOM_SCENARIO, ONE_ROOM))
        models[name] = EvalModel(str(onnx_file), f"trained:{name}", result.model.travel_axis, warm,
                                 turns_frames=False)
        summary[name] = {"recordings": len(paths), "frames": total, "travel_axis": result.model.travel_axis,
                         "clusters": result.model.clusters, "latent": result.model.latent,
                         "seconds": round(time.perf_counter() - began, 1)}
    main = models.get("rows") or next(iter(models.values()))
    by_axis = {}
    for name in ("rows", "columns"):
        if name in models:
            by_axis[name] = models[name]
    return ModelSet(main=main, by_axis=by_axis, plus5=models.get("one_room"), training=summary)


def models_needed(families: list) -> tuple:
    """Which of the three models the chosen families need (skip training the others)."""
    names = []
    if any(f.kind == "suite" and f.travel_axis == "rows" for f in families):
        names.append("rows")
    if any(f.kind == "suite" and f.travel_axis == "columns" for f in families):
        names.append("columns")
    if any(f.kind == "room_plus5" for f in families):
        names.append("one_room")
    return tuple(names)
