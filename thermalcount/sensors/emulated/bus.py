"""An emulated AMG8833 plugged in *below* smbus2, so the real driver and real smbus2 run unchanged.

smbus2 talks to Linux through three calls: ``os.open("/dev/i2c-N")``, ``fcntl.ioctl(fd, ...)``
and ``os.close(fd)``. :func:`install` routes those three names inside the ``smbus2.smbus2``
module through a dispatcher, once per process: paths registered with :func:`register_bus`
get a real, unique file descriptor (``/dev/null`` opened) whose ioctls are answered by an
:class:`EmulatedI2CBus`; every other path and fd goes to the real ``os`` and ``ioctl``.
The bus decodes the same kernel structures the i2c-dev driver would (``i2c_rdwr_ioctl_data``
with its ``i2c_msg`` array, ``i2c_smbus_ioctl_data``) straight from memory and fills read
buffers in place; an :class:`AMG8833Device` holds the register map.

Frames come from a frame source (the simulator by default) advanced by the device's clock:
real time times ``speed``, or with ``speed=None`` one new frame per pixel read. A
:class:`FaultPlan` injects I2C errors, disconnects, stuck frames and impossible values;
``bus.events``, ``bus.stats``, ``device.writes`` and ``device.stats`` record what happened.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import fcntl
import os
import random
import threading
import time
from collections import Counter, deque
from typing import Optional

import numpy as np

from thermalcount.errors import SensorSetupError
from thermalcount.sensors.emulated.device import AMG8833Device
from thermalcount.sensors.emulated.faults import FaultPlan

# ----------------------------------------------------------------- kernel ABI (uapi/linux/i2c*.h)
I2C_SLAVE, I2C_SLAVE_FORCE, I2C_FUNCS, I2C_RDWR, I2C_PEC, I2C_SMBUS = 0x0703, 0x0706, 0x0705, 0x0707, 0x0708, 0x0720
I2C_M_RD = 0x0001
SMBUS_READ = 1
SMBUS_QUICK, SMBUS_BYTE, SMBUS_BYTE_DATA, SMBUS_WORD_DATA, SMBUS_I2C_BLOCK_DATA = 0, 1, 2, 3, 8
RDWR_MAX_MSGS = 42
# What a Raspberry Pi's i2c-bcm2835 adapter reports: plain I2C plus emulated SMBus.
PI_ADAPTER_FUNCS = 0x00000001 | 0x0EFF0008


class _I2cMsg(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint16), ("flags", ctypes.c_uint16), ("len", ctypes.c_uint16),
                ("buf", ctypes.POINTER(ctypes.c_uint8))]


class _RdwrIoctlData(ctypes.Structure):
    _fields_ = [("msgs", ctypes.POINTER(_I2cMsg)), ("nmsgs", ctypes.c_uint32)]


class _SmbusData(ctypes.Union):
    _fields_ = [("byte", ctypes.c_uint8), ("word", ctypes.c_uint16), ("block", ctypes.c_uint8 * 34)]


class _SmbusIoctlData(ctypes.Structure):
    _fields_ = [("read_write", ctypes.c_uint8), ("command", ctypes.c_uint8), ("size", ctypes.c_uint32),
                ("data", ctypes.POINTER(_SmbusData))]


def _os_error(code: int, filename: Optional[str] = None) -> OSError:
    # OSError(errno, strerror) picks the builtin subclass (FileNotFoundError, PermissionError...).
    return OSError(code, os.strerror(code), *([filename] if filename else []))


# ----------------------------------------------------------------- frame sources


class CallableSource:
    """Frames from ``fn(index)`` returning an (8, 8) array in °C, or ``(array, thermistor_celsius)``."""

    def __init__(self, fn, thermistor: float = 24.0):
        self._fn, self._index, self._thermistor = fn, 0, thermistor

    def next_frame(self):
        result = self._fn(self._index)
        self._index += 1
        if isinstance(result, tuple):
            return result
        return result, self._thermistor


class SimulatorSource:
    """Frames from :class:`thermalcount.sensors.sim.simulator.Simulator`, generated in chunks."""

    def __init__(self, scenario: Optional[str] = None, *, seed: Optional[int] = None, fps: float = 10.0,
                 chunk_frames: int = 256):
        from thermalcount.sensors.sim.simulator import Simulator  # imported lazily: numpy-heavy

        self._sim = Simulator(scenario or "mixed", seed=0 if seed is None else seed, fps=fps)
        self._chunk_frames = chunk_frames
        self._frames, self._thermistor, self._pos = None, None, 0

    def next_frame(self):
        if self._frames is None or self._pos >= len(self._frames):
            chunk = self._sim.generate(self._chunk_frames)
            self._frames, self._thermistor, self._pos = chunk.frames, chunk.thermistor, 0
        frame = self._frames[self._pos]
        thermistor = float(self._thermistor[self._pos])
        self._pos += 1
        return frame, thermistor


def as_frame_source(source):
    """Accept an object with ``next_frame()``, a callable ``fn(index)``, or a (n, 8, 8) array (looped)."""
    if hasattr(source, "next_frame"):
        return source
    if callable(source):
        return CallableSource(source)
    frames = np.asarray(source, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (8, 8) or len(frames) == 0:
        raise TypeError("a frame source is an object with next_frame(), a callable or an (n, 8, 8) array")
    return CallableSource(lambda i: frames[i % len(frames)])


# ----------------------------------------------------------------- clocks


class FakeClock:
    """A manual clock for tests: ``clock()`` reads it, ``clock.sleep(dt)`` advances it at once.

    Pass the same instance as ``clock=`` and ``sleep=clock.sleep`` to the driver and the bus so
    paced reads, start-up waits and device frame times all run on it without real waiting.
    """

    def __init__(self, start: float = 1000.0):
        self.now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)

    advance = sleep


class _DeviceClock:
    """Device time in seconds since the bus was created: real time × speed, or virtual.

    With ``speed=None`` there is no real time to follow, so time advances one frame period
    on every combined (I2C_RDWR) transfer and every open attempt. A fault plan's
    ``disconnect=3s@10s`` then means "after about 100 frame reads at 10 FPS".
    """

    def __init__(self, speed: Optional[float], clock, fps: float):
        self.speed = speed
        self._clock = clock or time.monotonic
        self._t0 = self._clock()
        self._virtual = 0.0
        self._tick = 1.0 / fps

    def now(self) -> float:
        if self.speed is None:
            return self._virtual
        return (self._clock() - self._t0) * self.speed

    def tick(self) -> None:
        if self.speed is None:
            self._virtual += self._tick


# ----------------------------------------------------------------- the bus


class _Handle:
    """Per-fd state, as the kernel keeps it per open file: the selected slave address."""

    def __init__(self, bus: "EmulatedI2CBus"):
        self.bus = bus
        self.address: Optional[int] = None


class EmulatedI2CBus:
    """An emulated ``/dev/i2c-N``: devices by address, fault injection, and a record of it all.

    ``stats`` counts opens, transfers (``rdwr`` / ``smbus``), NACKs and injected errors
    (``errno_5`` ...); ``events`` keeps ``(device_time, kind, detail)`` tuples for
    disconnects, reconnects and failed opens; ``transfers`` keeps the last 1000 transfers as
    decoded: ``("rdwr", (("w", addr, bytes), ("r", addr, length)))`` or
    ``("smbus", read_write, command, size)``. All transfers are serialised by one lock, as
    a real adapter serialises them.
    """

    def __init__(self, number: int = 1, *, faults: "FaultPlan | str | None" = None, speed: Optional[float] = 1.0,
                 clock=None, fps: float = 10.0):
        self.number = number
        self.path = f"/dev/i2c-{number}"
        self.faults = FaultPlan.parse(faults)
        self.clock = _DeviceClock(speed, clock, fps)
        self.speed = speed
        self.devices: dict[int, AMG8833Device] = {}
        self.stats: Counter = Counter()
        self.events: deque = deque(maxlen=5000)
        self.transfers: deque = deque(maxlen=1000)
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.RLock()
        self._disconnected = None  # the Disconnect window we are in, if any

    def attach(self, address: int, device: AMG8833Device) -> AMG8833Device:
        device.bind(self.clock, self.faults, self._rng)
        self.devices[address] = device
        return device

    @property
    def device(self) -> AMG8833Device:
        """The only device on the bus (convenience for tests)."""
        (device,) = self.devices.values()
        return device

    # -- fault windows
    def _check_disconnect(self):
        now = self.clock.now()
        window = self.faults.disconnect_at(now)
        if window is not None and self._disconnected is None:
            self._disconnected = window
            self.events.append((now, "disconnect", window.mode))
        elif window is None and self._disconnected is not None:
            self._disconnected = None
            self.events.append((now, "reconnect", ""))
            for device in self.devices.values():  # it lost power: back to power-on defaults
                device.power_on()
        return self._disconnected

    # -- file layer
    def on_open(self) -> None:
        with self._lock:
            self.clock.tick()
            self.stats["opens"] += 1
            window = self._check_disconnect()
            code = self.faults.open_errno
            if code is None and window is not None and window.mode == "vanish":
                code = errno_codes.ENOENT
            if code is not None:
                self.stats["open_errors"] += 1
                self.events.append((self.clock.now(), "open-failed", code))
                raise _os_error(code, self.path)

    def ioctl(self, handle: _Handle, request: int, arg):
        with self._lock:
            if request == I2C_FUNCS:
                ctypes.c_ulong.from_buffer(arg).value = PI_ADAPTER_FUNCS
                return 0
            window = self._check_disconnect()
            if window is not None and window.mode == "vanish":
                raise _os_error(errno_codes.ENODEV)  # the adapter is gone under an open fd
            if request in (I2C_SLAVE, I2C_SLAVE_FORCE):
                if request == I2C_SLAVE and self.faults.busy and int(arg) in self.devices:
                    raise _os_error(errno_codes.EBUSY)  # a kernel driver has claimed the address
                handle.address = int(arg)
                return 0
            if request == I2C_RDWR:
                self.clock.tick()
                self.stats["rdwr"] += 1
                self._inject(window)
                return self._rdwr(_RdwrIoctlData.from_buffer(arg))
            if request == I2C_SMBUS:
                self.stats["smbus"] += 1
                self._inject(window)
                return self._smbus(handle, _SmbusIoctlData.from_buffer(arg))
            if request == I2C_PEC:
                return 0
            raise _os_error(errno_codes.ENOTTY)

    def _inject(self, window) -> None:
        if window is not None:  # "nack" disconnect: nobody answers
            self.stats["nacks"] += 1
            raise _os_error(errno_codes.EREMOTEIO)
        for code, rate in self.faults.errors.items():
            if rate > 0 and self._rng.random() < rate:
                self.stats[f"errno_{code}"] += 1
                raise _os_error(code)

    def _target(self, address: Optional[int]) -> AMG8833Device:
        device = self.devices.get(address)
        if device is None:
            self.stats["nacks"] += 1
            raise _os_error(errno_codes.EREMOTEIO)  # no ACK for the address byte
        return device

    def _rdwr(self, data: _RdwrIoctlData) -> int:
        if not 0 < data.nmsgs <= RDWR_MAX_MSGS:
            raise _os_error(errno_codes.EINVAL)
        msgs = [data.msgs[i] for i in range(data.nmsgs)]
        self.transfers.append(("rdwr", tuple(
            ("r", m.addr, m.len) if m.flags & I2C_M_RD else ("w", m.addr, ctypes.string_at(m.buf, m.len))
            for m in msgs)))
        for msg in msgs:  # the kernel fails the whole transfer if any address NACKs
            self._target(msg.addr)
        for msg in msgs:
            device = self.devices[msg.addr]
            if msg.flags & I2C_M_RD:
                ctypes.memmove(msg.buf, device.read_sequential(msg.len), msg.len)
            else:
                payload = ctypes.string_at(msg.buf, msg.len)
                if payload:
                    device.write_sequential(payload)
        return data.nmsgs

    def _smbus(self, handle: _Handle, data: _SmbusIoctlData) -> int:
        self.transfers.append(("smbus", data.read_write, data.command, data.size))
        device = self._target(handle.address)
        reading = data.read_write == SMBUS_READ
        size, command = data.size, data.command
        if size == SMBUS_QUICK:
            return 0
        union = data.data.contents
        if size == SMBUS_BYTE:
            if reading:
                union.byte = device.read_sequential(1)[0]
            else:
                device.write_sequential(bytes([command]))
        elif size == SMBUS_BYTE_DATA:
            if reading:
                union.byte = device.read_registers(command, 1)[0]
            else:
                device.write_sequential(bytes([command, union.byte]))
        elif size == SMBUS_WORD_DATA:
            if reading:
                low, high = device.read_registers(command, 2)
                union.word = low | high << 8
            else:
                device.write_sequential(bytes([command, union.word & 0xFF, union.word >> 8]))
        elif size == SMBUS_I2C_BLOCK_DATA:
            length = min(union.block[0], 32)
            if reading:
                union.block[1:length + 1] = list(device.read_registers(command, length))
            else:
                device.write_sequential(bytes([command, *union.block[1:length + 1]]))
        else:  # SMBus block/process calls: the Pi's adapter cannot do them either
            raise _os_error(errno_codes.EOPNOTSUPP)
        return 0


# ----------------------------------------------------------------- the process-wide dispatcher

_install_lock = threading.Lock()
_installed = False
_buses: dict[str, EmulatedI2CBus] = {}
_handles: dict[int, _Handle] = {}
_real_open, _real_close, _real_ioctl = os.open, os.close, fcntl.ioctl


def _dispatch_open(path, flags, mode=0o777, *, dir_fd=None):
    bus = _buses.get(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else None
    if bus is None:
        return _real_open(path, flags, mode, dir_fd=dir_fd)
    bus.on_open()
    fd = _real_open(os.devnull, os.O_RDWR)  # a real, unique descriptor to hand out
    _handles[fd] = _Handle(bus)
    return fd


def _dispatch_close(fd):
    _handles.pop(fd, None)
    _real_close(fd)


def _dispatch_ioctl(fd, request, arg=0, mutate_flag=True):
    handle = _handles.get(fd)
    if handle is None:
        return _real_ioctl(fd, request, arg, mutate_flag)
    return handle.bus.ioctl(handle, request, arg)


class _OsForSmbus:
    """Stands in for the ``os`` module inside smbus2: ``open``/``close`` dispatched, rest real."""

    open = staticmethod(_dispatch_open)
    close = staticmethod(_dispatch_close)

    def __getattr__(self, name):
        return getattr(os, name)


def install() -> None:
    """Route smbus2's file and ioctl calls through the dispatcher. Idempotent and thread-safe."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import smbus2.smbus2 as smbus2_module  # patched, not used for I/O here

        smbus2_module.os = _OsForSmbus()
        smbus2_module.ioctl = _dispatch_ioctl
        _installed = True


def register_bus(bus: EmulatedI2CBus) -> EmulatedI2CBus:
    """Make ``/dev/i2c-N`` (as smbus2 opens it) the emulated bus. Replaces an earlier one."""
    install()
    with _install_lock:
        _buses[bus.path] = bus
    return bus


def unregister_bus(bus: EmulatedI2CBus) -> None:
    """Stop routing the bus's path (fds already open keep talking to it until closed)."""
    with _install_lock:
        if _buses.get(bus.path) is bus:
            del _buses[bus.path]


def open_emulated(*, fps: float = 10, speed: Optional[float] = 1.0, bus: int = 1, address: int = 0x69,
                  orientation=None, seed: Optional[int] = None, scenario: Optional[str] = None,
                  faults: "FaultPlan | str | None" = None, source=None, device_address: Optional[int] = None,
                  clock=None, sleep=None, **driver_options):
    """The real :class:`~thermalcount.sensors.amg8833.AMG8833` driver on an emulated bus.

    ``source`` feeds the device (default: the simulator with ``scenario``/``seed``);
    ``device_address`` is where the emulated part answers (default: ``address``; set it
    differently to reproduce a wrong-address set-up). The returned sensor has an
    ``emulator`` attribute: the :class:`EmulatedI2CBus` (``sensor.emulator.device`` is the part).
    """
    from thermalcount.sensors.amg8833 import AMG8833, check_frame_rate

    check_frame_rate(fps)
    if source is None:
        try:
            source = SimulatorSource(scenario, seed=seed, fps=fps)
        except ImportError as error:
            raise SensorSetupError(f"the emulated sensor needs the simulator, which failed to import: {error}") from None
    emulated_bus = EmulatedI2CBus(bus, faults=faults, speed=speed, clock=clock, fps=fps)
    emulated_bus.attach(address if device_address is None else device_address, AMG8833Device(source))
    if speed != 1 and "wall_clock" not in driver_options:
        # Faster (or virtual) device time must reach the frames' timestamps too: the counter
        # debounces and `--duration` measures in sensor time, not in wall time.
        started = time.time()
        driver_options["wall_clock"] = lambda: started + emulated_bus.clock.now()
    register_bus(emulated_bus)
    try:
        sensor = AMG8833(bus, address, fps=fps, orientation=orientation, speed=speed, sensor_name="emulated",
                         clock=clock, sleep=sleep, **driver_options)
    except BaseException:
        unregister_bus(emulated_bus)
        raise
    sensor.emulator = emulated_bus
    sensor.add_close_callback(lambda: unregister_bus(emulated_bus))
    return sensor
