"""One error hierarchy for everything a user can get wrong or the world can break.

Every expected failure raises a subclass of :class:`ThermalcountError` whose message is ONE
line that says what is wrong and what to do. The CLI prints it as ``Error: ...`` and exits
non-zero without a traceback. Like gpiozero, each class also inherits the builtin it
resembles, so library users can catch ``ValueError`` or ``OSError`` as they would anyway.
"""

from __future__ import annotations


class ThermalcountError(Exception):
    """Base class. ``str(error)`` is the one-line message shown to the user."""

    exit_code = 1


class UsageError(ThermalcountError, ValueError):
    """A bad option value or combination of options."""

    exit_code = 2


class RecordingError(ThermalcountError, ValueError):
    """A recording file that is missing, unreadable, corrupt or of the wrong schema."""


class OutputPathError(ThermalcountError, OSError):
    """An output path that exists (without --overwrite/--append) or cannot be written."""


class ImportFormatError(ThermalcountError, ValueError):
    """A file given to ``thermalcount import`` that cannot be turned into frames."""


class SensorError(ThermalcountError, OSError):
    """A sensor fault while reading. Transient: the live loops retry and recover."""


class SensorSetupError(SensorError):
    """The sensor cannot be opened or initialised at all (I2C disabled, wrong address...)."""


class EndOfStream(ThermalcountError):
    """A finite sensor (replay) has no more frames. Not an error for the loops."""


class ModelError(ThermalcountError, ValueError):
    """A model file that is missing, not ONNX, of the wrong shape or missing metadata."""


class TrainingError(ThermalcountError, ValueError):
    """Training cannot proceed (too few frames, NaN data, missing [train] extra...)."""


class LightsError(ThermalcountError):
    """A light set-up problem: unknown light/group, unpaired bridge, bad bridge address."""


class ConfigError(ThermalcountError, OSError):
    """The config file or a stored credential is unreadable or malformed."""


class MqttError(ThermalcountError):
    """An MQTT set-up problem: bad URL, missing credentials, TLS files unreadable."""
