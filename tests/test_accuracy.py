"""The accuracy suite at CI size, on the embedded default model and with --train (issue 6).

Runs ``thermalcount evaluate --size ci`` for real (the --train run trains three models:
~1 minute on 2 cores) and asserts the floors below.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.evaluation.suite import BAR, FAMILY_NAMES

# --------------------------------------------------------------------------------------------
# THRESHOLDS. The bar of issue 6 is in thermalcount.evaluation.suite.BAR (overall F1 >= 0.99,
# weakest family >= 0.97, room +5 °C >= 0.95). These are the floors the CURRENT models meet at
# CI size, a little below the measured figures; raise them as the model improves, up to BAR.
# Measured at CI size on the geometric simulator of issue 13 (real-sized people) when they
# were set (counter with tracks, no heat "two"; apart rule with where the pair sits; floor
# 0.65; docs/accuracy.md has the full-size table):
#   default model: overall 0.993, weakest warm_object 0.981, room +5 °C 0.992
#   --train:       overall 0.990, weakest warm_object 0.969, room +5 °C 1.000
# Pairs that walk so close that they never show as two blobs are counted once: the
# pair-heavy families are the weakest (docs/accuracy.md). Models trained on other seeds
# differ by about a hundredth in single families.
DEFAULT_MODEL_FLOORS = {"overall_f1": 0.985, "hardest_family_f1": 0.96, "room_plus5_f1": 0.95}
TRAINED_FLOORS = {"overall_f1": 0.98, "hardest_family_f1": 0.95, "room_plus5_f1": 0.95}
#: Every family must keep at least this F1 at CI size.
FAMILY_FLOOR = {"default": 0.96, "trained": 0.95}
# --------------------------------------------------------------------------------------------


def _evaluate(*args) -> dict:
    result = CliRunner().invoke(cli, ["evaluate", "--size", "ci", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _figures(report: dict) -> dict:
    plus5 = next(f for f in report["families"] if f["kind"] == "room_plus5")
    return {"overall_f1": report["totals"]["overall"]["f1"], "hardest_family_f1": report["weakest"]["f1"],
            "room_plus5_f1": plus5["overall"]["f1"]}


def _check(report: dict, floors: dict, family_floor: float) -> None:
    assert [f["name"] for f in report["families"]] == list(FAMILY_NAMES)
    assert all(f["true_events"] > 0 for f in report["families"])
    figures = _figures(report)
    short = {key: round(value, 3) for key, value in figures.items()}
    families = {f["name"]: round(f["overall"]["f1"], 3) for f in report["families"] if f["kind"] == "suite"}
    assert min(families.values()) >= family_floor, families
    for key, floor in floors.items():
        assert floor <= BAR[key]
        assert figures[key] >= floor, f"{key} {figures[key]:.3f} < floor {floor} (all: {short}, weakest " \
                                      f"{report['weakest']['name']})"


@pytest.mark.slow
def test_default_model_meets_its_floors_on_the_ci_suite():
    _check(_evaluate(), DEFAULT_MODEL_FLOORS, FAMILY_FLOOR["default"])


@pytest.mark.slow
def test_models_trained_with_the_standard_pipeline_meet_their_floors():
    report = _evaluate("--train")
    training = report["training"]
    assert set(training) == {"rows", "columns", "one_room"}
    # Training must find the travel axis of each mounting from the data.
    assert training["rows"]["travel_axis"] == "rows" and training["columns"]["travel_axis"] == "columns"
    models = {f["name"]: f["model"] for f in report["families"]}
    assert models["other_mounting"] == "trained:columns" and models["room_plus5"] == "trained:one_room"
    assert models["drift"] == "trained:rows"
    _check(report, TRAINED_FLOORS, FAMILY_FLOOR["trained"])
