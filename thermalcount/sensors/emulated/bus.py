"""An emulated AMG8833 plugged in *below* smbus2, so the real driver and real smbus2 run unchanged.

smbus2 talks to Linux through three calls: ``os.open("/dev/i2c-N")``, ``fcntl.ioctl(fd, ...)``
and ``os.close(fd)``. :meth:`EmulatedI2CBus.smbus` gives the driver (as its ``bus_factory``)
a real ``smbus2.SMBus`` whose three calls reach this bus instead: opening its path hands
out a real, unique file descriptor (``/dev/null`` opened) whose ioctls the bus answers.
Nothing is patched: every other ``SMBus`` in the process still talks to the kernel.
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
import os
import random
import threading
import time
import types
from collections import Counter, deque
from typing import Optional

from thermalcount.errors import SensorSetupError
from thermalcount.sensors.registry import DEFAULT_ADDRESS, DEFAULT_BUS
from thermalcount.sensors.emulated.device import AMG8833Device
from thermalcount.sensors.emulated.faults import FaultPlan
from thermalcount.sensors.emulated.sources import SimulatorSource

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
        self._smbus_class = None  # built on first use: smbus2 is imported only when needed

    def smbus(self, number: Optional[int] = None, force: bool = False):
        """A real ``smbus2.SMBus`` opened on this bus (the driver's ``bus_factory``).

        ``number`` is what the driver asks for; a bus number other than this one's fails as
        a missing ``/dev/i2c-N`` would. ``force`` is smbus2's (I2C_SLAVE_FORCE).
        """
        if self._smbus_class is None:
            self._smbus_class = _smbus_class_over(_FileLayer(self))
        return self._smbus_class(self.number if number is None else number, force=force)

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


# ----------------------------------------------------------------- smbus2 over the bus


class _FileLayer:
    """What smbus2 sees as ``os`` and ``ioctl``: this bus's device file, everything else real.

    Opening ``/dev/i2c-N`` hands out a real, unique descriptor (``/dev/null`` opened) whose
    ioctls this bus answers; any other path fails as a missing bus would.
    """

    def __init__(self, bus: "EmulatedI2CBus"):
        self._bus = bus
        self._handles: dict[int, _Handle] = {}

    def open(self, path, flags, mode=0o777, *, dir_fd=None):
        if os.fsdecode(path) != self._bus.path:
            raise _os_error(errno_codes.ENOENT, os.fsdecode(path))
        self._bus.on_open()
        fd = os.open(os.devnull, os.O_RDWR)
        self._handles[fd] = _Handle(self._bus)
        return fd

    def close(self, fd):
        self._handles.pop(fd, None)
        os.close(fd)

    def ioctl(self, fd, request, arg=0, mutate_flag=True):
        handle = self._handles.get(fd)
        if handle is None:  # closed, or never one of ours: what the kernel says to a stale fd
            raise _os_error(errno_codes.EBADF)
        return self._bus.ioctl(handle, request, arg)

    def __getattr__(self, name):  # O_RDWR and the rest: the real os module
        return getattr(os, name)


def _smbus_class_over(layer: _FileLayer) -> type:
    """A subclass of the real ``smbus2.SMBus`` whose methods are smbus2's own code, unchanged,
    with only the module-level names ``os`` and ``ioctl`` resolving to ``layer``.

    smbus2 reaches the kernel only through those two names, so every line of smbus2 runs as
    on a Pi, and nothing outside this class is patched: a real AMG8833 in the same process
    still talks to the real ``/dev/i2c-N``.
    """
    import smbus2.smbus2 as smbus2_module

    namespace = dict(vars(smbus2_module), os=layer, ioctl=layer.ioctl)

    def rebound(function):
        copy = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                                  function.__closure__)
        copy.__kwdefaults__, copy.__qualname__, copy.__doc__ = (function.__kwdefaults__, function.__qualname__,
                                                                function.__doc__)
        return copy

    members = {}
    for name, member in vars(smbus2_module.SMBus).items():
        if isinstance(member, types.FunctionType):
            members[name] = rebound(member)
        elif isinstance(member, property):
            members[name] = property(*(rebound(f) if f else None for f in (member.fget, member.fset, member.fdel)),
                                     member.__doc__)
    return type("SMBus", (smbus2_module.SMBus,), members)


def open_emulated(*, fps: float = 10, speed: Optional[float] = 1.0, bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS,
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
    sensor = AMG8833(bus, address, fps=fps, orientation=orientation, speed=speed, sensor_name="emulated",
                     clock=clock, sleep=sleep, bus_factory=emulated_bus.smbus, **driver_options)
    sensor.emulator = emulated_bus
    return sensor
