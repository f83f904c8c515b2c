"""A made-up light system, added the way a real one is: this module plus one registry line
(``registry.register("dummy", "tests.dummy_lights")``, done by the tests that use it).

It switches nothing; it remembers what it was told, so a test can compare that with what the
counter says the lights should have done."""

from __future__ import annotations

from thermalcount.lights.base import Lights

#: Every change the dummy was told, in order: (on, reason).
TOLD: list = []

TAKES_TARGETS = False


class DummyLights(Lights):
    backend = "dummy"
    target = "dummy"

    def _apply(self, on: bool) -> None:
        with self._lock:
            TOLD.append((on, self._reason))
        super()._apply(on)


def open_lights(settings, on_status=None, **options) -> DummyLights:
    return DummyLights()
