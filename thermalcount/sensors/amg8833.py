"""The AMG8833 driver over smbus2 (the only module that does I2C I/O with smbus2).

One frame is ONE combined I2C transaction: write the pixel start register 0x80, then read
all 128 pixel bytes with a repeated start. The specification guarantees that such a read
never mixes two frames; 64 small reads would be slow and could.

Faults: at start-up every I2C error becomes a :class:`SensorSetupError` whose one-line
message says what to check. Once running, a failed read raises :class:`SensorError` and
the driver mends itself on the next ``read()``: it retries a flaky transfer, and re-opens
the bus and re-runs the start-up sequence when the sensor went away, stopped answering,
or stopped producing new frames.
"""

from __future__ import annotations

import errno as errno_codes
import time
from typing import Callable, Optional

from smbus2 import SMBus, i2c_msg

from thermalcount.errors import SensorError, SensorSetupError, UsageError
from thermalcount.sensors.base import Pacer, Sensor, SensorFrame, SensorInfo
from thermalcount.sensors.registry import AMG8833_ADDRESSES, DEFAULT_ADDRESS, DEFAULT_BUS
from thermalcount.sensors.conversions import (
    PIXEL_BYTES,
    PIXEL_OFFSET,
    PixelDecoder,
    parse_orientation,
    pixels_from_bytes,
    thermistor_raw_to_celsius,
)

# Registers (names from the datasheet).
REG_PCTL, REG_RST, REG_FPSC, REG_TTHL = 0x00, 0x01, 0x02, 0x0E
PCTL_NORMAL = 0x00
RST_INITIAL, RST_FLAG = 0x3F, 0x30
FPSC_1FPS, FPSC_10FPS = 0x01, 0x00
WAKE_WAIT_S = 0.050  # after PCTL←normal, before the initial reset
RESET_WAIT_S = 0.002  # after the initial reset
SETTLE_FRAMES = 2  # frames to discard after a reset: only the third one is trusted

# Beyond these the value is not a measurement but a fault (a glitched transfer, a bit flip).
PIXEL_PLAUSIBLE_C = (-40.0, 150.0)
THERMISTOR_PLAUSIBLE_C = (-25.0, 90.0)

# Errors after which the sensor or the bus itself is gone: re-open and re-initialise.
_GONE = {errno_codes.ENOENT, errno_codes.ENODEV, errno_codes.ENXIO, errno_codes.EBADF, errno_codes.EREMOTEIO}
# Errors a retry may cure (a glitch), unlike a missing bus, a permission or a silent address.
_FLAKY = {errno_codes.EIO, errno_codes.ETIMEDOUT, errno_codes.EAGAIN}
FLAKY_RETRIES_BEFORE_REINIT = 3
START_ATTEMPTS = 3


def i2c_advice(error: OSError, bus: int, address: int) -> str:
    """One line saying what an I2C ``OSError`` most likely means on a Raspberry Pi, and what to do."""
    where = f"I2C bus {bus} address 0x{address:02x}"
    code = error.errno
    if code == errno_codes.ENOENT:
        return (f"/dev/i2c-{bus} does not exist: I2C is not enabled; run 'sudo raspi-config' (Interface "
                "Options > I2C) or add dtparam=i2c_arm=on to /boot/firmware/config.txt, then reboot")
    if code == errno_codes.EACCES or code == errno_codes.EPERM:
        return (f"permission denied on /dev/i2c-{bus}: add your user to group i2c "
                "('sudo adduser $USER i2c') and log in again")
    if code == errno_codes.EREMOTEIO or code == errno_codes.ENXIO:
        return (f"no device answers at {where} (no ACK): check the wiring (3V3, GND, SDA to pin 3, SCL to "
                f"pin 5) and the address (0x68 or 0x69; see 'i2cdetect -y {bus}', --address)")
    if code == errno_codes.EIO:
        return (f"I2C input/output error at {where}: check for loose or long wires and a good ground; "
                "a lower bus speed can help")
    if code == errno_codes.ETIMEDOUT:
        return f"I2C bus timeout at {where}: check SDA/SCL wiring and pull-ups, then power-cycle the sensor"
    if code == errno_codes.EBUSY:
        return (f"{where} is in use by a kernel driver: remove the AMG88xx/video-i2c dtoverlay from "
                "/boot/firmware/config.txt (or unload the driver) and reboot")
    if code == errno_codes.ENODEV:
        return f"the I2C adapter for bus {bus} disappeared: check the sensor's connection"
    return f"I2C error at {where}: {error.strerror or error} (errno {code})"


def probe_addresses(bus: int, addresses=AMG8833_ADDRESSES, bus_factory: Optional[Callable] = None) -> dict:
    """For ``thermalcount doctor``: open ``/dev/i2c-<bus>`` and read the frame-rate register
    at each address. Returns ``{address: None (it answered) or the OSError}``; opening the
    bus itself raises its OSError (give it to :func:`i2c_advice`). Writes nothing."""
    found = {}
    with (bus_factory or SMBus)(bus) as handle:
        for address in addresses:
            try:
                handle.read_byte_data(address, REG_FPSC)
                found[address] = None
            except OSError as error:
                found[address] = error
    return found


def check_frame_rate(fps) -> None:
    """Raise UsageError unless ``fps`` is one of the part's two frame rates."""
    if fps not in (1, 10):
        raise UsageError(f"the AMG8833 runs at 1 or 10 frames per second, not {fps:g}; use --fps 1 or --fps 10")


def open_amg8833(*, fps: float = 10, speed: Optional[float] = 1.0, bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS,
                 orientation=None, **kw) -> "AMG8833":
    """``--sensor amg8833``: the real part, which runs in real time only."""
    if speed != 1:
        raise UsageError("a real AMG8833 runs in real time: --speed only applies to emulated, sim and replay")
    return AMG8833(bus, address, fps=fps, orientation=orientation, **kw)


class AMG8833(Sensor):
    """A Panasonic AMG8833 (Grid-EYE) on a Linux I2C bus.

    ``bus_factory(bus)`` returns an smbus2-compatible bus object (default ``smbus2.SMBus``).
    ``speed``, ``clock`` and ``sleep`` exist for the emulated part (speed None = do not wait);
    a real part always runs at ``speed=1``. ``stale_frames``: after this many reads in a row
    return the very same frame, the sensor counts as stuck (default 20 at 10 FPS, 10 at 1 FPS:
    with the part's noise a live frame always changes somewhere). ``thermistor_every``: read
    the board temperature every this many frames (default: once a second).

    ``stats`` counts frames, read errors (and by errno), recoveries, stale and out-of-range
    events; ``last_error`` holds the most recent fault message.
    """

    def __init__(self, bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS, *, fps: float = 10, orientation=None,
                 speed: Optional[float] = 1.0, bus_factory: Optional[Callable] = None, sensor_name: str = "amg8833",
                 stale_frames: Optional[int] = None, thermistor_every: Optional[int] = None,
                 clock=None, sleep=None, wall_clock=None):
        check_frame_rate(fps)
        if speed is not None and speed <= 0:
            raise UsageError(f"speed must be greater than zero (or None for as fast as possible), not {speed}")
        self.bus_number, self.address, self.fps, self.speed = bus, address, int(fps), speed
        self.orientation = parse_orientation(orientation)
        self._decode = PixelDecoder(self.orientation.permutation(), PIXEL_PLAUSIBLE_C)
        self.info = SensorInfo(sensor=sensor_name, fps=float(fps), address=address, bus=bus,
                               orientation=str(self.orientation))
        self._bus_factory = bus_factory or SMBus
        self._sleep = sleep or time.sleep
        self._wall_clock = wall_clock or time.time
        self._pacer = Pacer(fps, speed, clock=clock, sleep=self._sleep)
        self.stale_frames = stale_frames or (20 if fps == 10 else 10)
        self.thermistor_every = thermistor_every or int(fps)
        self.stats = {"frames": 0, "read_errors": 0, "recoveries": 0, "stale": 0, "out_of_range": 0,
                      "thermistor_out_of_range": 0, "inits": 0}
        self.errors_by_errno: dict = {}
        self.last_error: Optional[str] = None
        self._bus = None
        self._needs_init = True
        self._flaky = 0
        self._index = 0
        self._last_raw = None
        self._repeats = 0
        self._thermistor: Optional[float] = None
        # The combined transaction is built once and reused: same address, same length.
        self._select_pixels = i2c_msg.write(address, [PIXEL_OFFSET])
        self._pixel_data = i2c_msg.read(address, PIXEL_BYTES)
        try:
            self._start_with_retries()
        except OSError as error:
            self._drop_bus()
            raise SensorSetupError(f"cannot start the AMG8833: {i2c_advice(error, bus, address)}") from None
        except _NotAnAMG8833 as error:
            self._drop_bus()
            raise SensorSetupError(str(error)) from None

    # -- start-up
    def _wait(self, seconds: float) -> None:
        if self.speed is not None:
            self._sleep(seconds / self.speed)

    def _start_with_retries(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start()
            except OSError as error:
                if error.errno not in _FLAKY or attempt == START_ATTEMPTS:
                    raise
                self.errors_by_errno[error.errno] = self.errors_by_errno.get(error.errno, 0) + 1

    def _start(self) -> None:
        """Open the bus and run the documented wake-up sequence, then let the data settle."""
        if self._bus is None:
            self._bus = self._bus_factory(self.bus_number)
        bus, address = self._bus, self.address
        bus.write_byte_data(address, REG_PCTL, PCTL_NORMAL)
        self._wait(WAKE_WAIT_S)
        bus.write_byte_data(address, REG_RST, RST_INITIAL)
        self._wait(RESET_WAIT_S)
        bus.write_byte_data(address, REG_RST, RST_FLAG)
        wanted = FPSC_1FPS if self.fps == 1 else FPSC_10FPS
        bus.write_byte_data(address, REG_FPSC, wanted)
        actual = bus.read_byte_data(address, REG_FPSC)
        if actual & 0x01 != wanted:
            raise _NotAnAMG8833(
                f"the device at I2C bus {self.bus_number} address 0x{address:02x} does not behave like an "
                f"AMG8833 (frame-rate register reads 0x{actual:02x}); check --address and 'i2cdetect -y {self.bus_number}'"
            )
        for _ in range(SETTLE_FRAMES):  # the first frames after a reset are not valid yet
            self._wait(1.0 / self.fps)
            self._read_pixel_bytes()
        self._read_thermistor()
        self._needs_init = False
        self._last_raw, self._repeats, self._flaky = None, 0, 0
        self.stats["inits"] += 1

    def _drop_bus(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except OSError:
                pass

    # -- I/O
    def _read_pixel_bytes(self) -> bytes:
        self._bus.i2c_rdwr(self._select_pixels, self._pixel_data)
        return bytes(self._pixel_data)

    def _read_thermistor(self) -> None:
        celsius = thermistor_raw_to_celsius(self._bus.read_word_data(self.address, REG_TTHL))
        low, high = THERMISTOR_PLAUSIBLE_C
        if low <= celsius <= high:
            self._thermistor = celsius
        else:  # not worth dropping a frame for: report it and leave the value out
            self.stats["thermistor_out_of_range"] += 1
            self.last_error = f"thermistor reads {celsius:g} °C, outside {low:g}..{high:g} °C"
            self._thermistor = None

    def read(self) -> SensorFrame:
        self._pacer.wait()
        try:
            if self._needs_init:
                self._start()
                self.stats["recoveries"] += 1
            raw = self._read_pixel_bytes()
            if self._index % self.thermistor_every == 0:
                self._read_thermistor()
        except OSError as error:
            raise self._fault(error) from None
        except _NotAnAMG8833 as error:
            self._needs_init = True
            raise self._report(str(error)) from None
        self._flaky = 0
        return self.frame_from_bytes(raw)

    def frame_from_bytes(self, raw: bytes) -> SensorFrame:
        """The next frame from the 128 pixel bytes just transferred: the stale-frame check,
        the decode (:class:`~thermalcount.sensors.conversions.PixelDecoder`: orientation and
        plausible range) and the frame's time and index. ``read()`` after its transfer, and
        what ``bench`` times as the driver's decode. SensorError for a stale or implausible
        frame."""
        if raw == self._last_raw:
            self._repeats += 1
            if self._repeats >= self.stale_frames:
                self.stats["stale"] += 1
                self._needs_init = True  # the documented cure: run the start-up sequence again
                raise self._report(f"sensor frames are not updating (the same frame {self._repeats + 1} times in a row); "
                                   "re-initialising the AMG8833")
        else:
            self._last_raw, self._repeats = raw, 0
        pixels = self._decode(raw)
        if pixels is None:
            self.stats["out_of_range"] += 1
            values, (low, high) = pixels_from_bytes(raw), PIXEL_PLAUSIBLE_C
            worst = int(abs(values - (low + high) / 2).argmax())
            raise self._report(f"pixel {worst + 1} reads {values[worst]:g} °C, outside what an AMG8833 can see "
                               f"({low:g}..{high:g} °C); frame dropped (glitch on the I2C bus?)")
        frame = SensorFrame(pixels, self._wall_clock(), self._index, self._thermistor)
        self._index += 1
        self.stats["frames"] += 1
        return frame

    def _fault(self, error: OSError) -> SensorError:
        self.errors_by_errno[error.errno] = self.errors_by_errno.get(error.errno, 0) + 1
        self._flaky += 1
        if error.errno in _GONE or self._flaky >= FLAKY_RETRIES_BEFORE_REINIT or self._needs_init:
            # Gone or persistently failing: start from a fresh file descriptor and a reset part.
            self._drop_bus()
            self._needs_init = True
        if error.errno == errno_codes.ENOENT:
            # The bus was there at start, so "I2C is not enabled" would be the wrong advice.
            advice = (f"/dev/i2c-{self.bus_number} disappeared after a good start: check the sensor's "
                      "connection and the Pi's power supply")
        else:
            advice = i2c_advice(error, self.bus_number, self.address)
        return self._report(f"AMG8833 read failed: {advice}; retrying")

    def _report(self, message: str) -> SensorError:
        self.stats["read_errors"] += 1
        self.last_error = message
        return SensorError(message)

    # -- lifecycle
    def close(self) -> None:
        self._drop_bus()


class _NotAnAMG8833(Exception):
    """The address answered but the registers do not behave like an AMG8833's."""
