"""Fakes shipped as library code, so tests and users can run everything without hardware.

* :class:`~thermalcount.testing.fake_hue.FakeHueBridge`: a Hue bridge (API v1) over real
  HTTP on 127.0.0.1 that records every state change and can fail on demand
  (``python -m thermalcount.testing.fake_hue`` runs one standalone).
"""

__all__ = ["FakeHueBridge", "Change"]


def __getattr__(name):
    # Lazy, so ``python -m thermalcount.testing.fake_hue`` does not import the module twice.
    if name in __all__:
        from thermalcount.testing import fake_hue

        return getattr(fake_hue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
