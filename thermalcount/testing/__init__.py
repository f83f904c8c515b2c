"""Fakes shipped as library code, so tests and users can run everything without hardware.

* :class:`~thermalcount.testing.fake_hue.FakeHueBridge`: a Hue bridge (API v1) over real
  HTTP on 127.0.0.1 that records every state change and can fail on demand
  (``python -m thermalcount.testing.fake_hue`` runs one standalone).
"""

from thermalcount.testing.fake_hue import Change, FakeHueBridge

__all__ = ["FakeHueBridge", "Change"]
