"""The AMG8833 register map, emulated: what the part does with each register read and write.

Used by :class:`thermalcount.sensors.emulated.bus.EmulatedI2CBus`, which delivers the bytes of
each I2C message here. Behaviour follows /work/shared/reference/amg8833.md:

* PCTL 0x00 normal, 0x10 sleep (only PCTL←0x00 is accepted, data reads are invalid),
  0x20/0x21 stand-by (frames every 60 s / 10 s);
* RST 0x3F initial reset (registers to defaults, data invalid until the next frame),
  0x30 flag reset (STAT and interrupt table cleared);
* FPSC bit0: 1 FPS or 10 FPS; AVE (moving average) only after the 0x1F unlock sequence;
* INTC/levels/hysteresis read-write; interrupt table and STAT.INTF computed per frame;
* thermistor 0x0E/0x0F in sign-magnitude, pixels 0x80-0xFF in two's complement.
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np

from thermalcount.sensors.conversions import celsius_to_thermistor_raw, pixels_to_bytes
from thermalcount.sensors.emulated.sources import as_frame_source

PCTL, RST, FPSC, INTC, STAT, SCLR, AVE, AVE_UNLOCK = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x1F
INT_LEVELS = range(0x08, 0x0E)  # INTHL, INTHH, INTLL, INTLH, IHYSL, IHYSH
TTHL, TTHH, INT_TABLE, PIXELS = 0x0E, 0x0F, 0x10, 0x80
PCTL_NORMAL, PCTL_SLEEP, PCTL_STANDBY_60, PCTL_STANDBY_10 = 0x00, 0x10, 0x20, 0x21
RST_INITIAL, RST_FLAG = 0x3F, 0x30
AVE_UNLOCK_SEQUENCE = (0x50, 0x45, 0x57)
WRITE_ONLY = {RST, SCLR, AVE_UNLOCK}
MAX_CATCH_UP_FRAMES = 3000  # frames skipped after a long pause are drawn but never encoded


class AMG8833Device:
    """One emulated part. ``writes`` records ``(device_time, register, value, accepted)``.

    ``stats`` counts ``frames`` (new frames latched into the pixel registers),
    ``pixel_reads`` (reads of all 128 pixel bytes at once), ``partial_pixel_reads``,
    ``stuck_frames``, ``absurd_frames``, ``initial_resets``, ``flag_resets``, ``power_ons``
    and ``sleep_reads`` (reads while asleep, which return invalid data).
    """

    def __init__(self, source, *, thermistor: float = 24.0):
        self.source = as_frame_source(source)
        self.default_thermistor = thermistor
        self.regs = bytearray(256)
        self.writes: deque = deque(maxlen=10000)
        self.stats: Counter = Counter()
        self.frame_number = 0  # frames drawn from the source over the device's life
        self._pointer = 0
        self._clock = self._faults = self._rng = None
        self._previous = None  # last latched frame (°C), for moving average and difference interrupts

    def bind(self, clock, faults, rng) -> None:
        """Called by the bus: the device's clock, the fault plan and the fault dice."""
        self._clock, self._faults, self._rng = clock, faults, rng
        self.power_on()

    # -- state changes
    def power_on(self) -> None:
        self.regs[:] = bytes(256)
        self.stats["power_ons"] += 1
        self._last_reset_frame = self.frame_number  # a power cycle also un-sticks the array
        self._initial_reset_state()

    def _initial_reset_state(self) -> None:
        pctl = self.regs[PCTL]
        self.regs[:PIXELS] = bytes(PIXELS)
        self.regs[PIXELS:] = bytes(128)
        self.regs[PCTL] = pctl
        self._ave_progress = 0
        self._previous = None
        self._anchor()

    def _anchor(self) -> None:
        """Restart frame timing now; data is invalid until the first frame completes."""
        self._anchor_time = self._clock.now() if self._clock else 0.0
        self._anchor_frame = self.frame_number
        self._valid = False

    @property
    def fps(self) -> float:
        return 1.0 if self.regs[FPSC] & 0x01 else 10.0

    @property
    def asleep(self) -> bool:
        return self.regs[PCTL] == PCTL_SLEEP

    def _period(self) -> float:
        if self.regs[PCTL] == PCTL_STANDBY_60:
            return 60.0
        if self.regs[PCTL] == PCTL_STANDBY_10:
            return 10.0
        return 1.0 / self.fps

    # -- bus-facing register access
    def write_sequential(self, payload: bytes) -> None:
        """An I2C write: the first byte sets the register pointer, the rest are written from there."""
        self._pointer = payload[0]
        for value in payload[1:]:
            self._write(self._pointer, value)
            self._pointer = (self._pointer + 1) & 0xFF

    def read_sequential(self, length: int) -> bytes:
        """An I2C read from the register pointer, auto-incrementing."""
        data = self.read_registers(self._pointer, length)
        self._pointer = (self._pointer + length) & 0xFF
        return data

    def read_registers(self, start: int, length: int) -> bytes:
        self._pointer = start
        if start + length > TTHL and start < 0x100:
            self._refresh(starts_frame_read=start == PIXELS)
        if start >= PIXELS:
            if length >= 128 and start == PIXELS:
                self.stats["pixel_reads"] += 1
            else:
                self.stats["partial_pixel_reads"] += 1
        if self.asleep:
            self.stats["sleep_reads"] += 1
            return bytes(length)  # invalid: the part does not convert while asleep
        end = start + length
        data = bytes(self.regs[start:min(end, 0x100)])
        if end > 0x100:  # the pointer wraps around the 256-register space
            data += bytes(self.regs[:end - 0x100])
        if start >= 0x20 and end <= 0x100:
            return data
        return bytes(0 if (start + i) & 0xFF in WRITE_ONLY else b for i, b in enumerate(data))

    def _write(self, register: int, value: int) -> None:
        accepted = self._accept_write(register, value)
        self.writes.append((self._clock.now() if self._clock else 0.0, register, value, accepted))

    def _accept_write(self, register: int, value: int) -> bool:
        if self.asleep and not (register == PCTL and value == PCTL_NORMAL):
            return False  # in sleep mode only PCTL←0x00 is accepted
        if register == PCTL:
            if value not in (PCTL_NORMAL, PCTL_SLEEP, PCTL_STANDBY_60, PCTL_STANDBY_10):
                return False
            self.regs[PCTL] = value
            self._anchor()
            return True
        if register == RST:
            if value == RST_INITIAL:
                self.stats["initial_resets"] += 1
                self._last_reset_frame = self.frame_number
                self._initial_reset_state()
                return True
            if value == RST_FLAG:
                self.stats["flag_resets"] += 1
                self._clear_flags(0x06)
                return True
            return False
        if register == FPSC:
            if (value ^ self.regs[FPSC]) & 0x01:
                self._anchor()
            self.regs[FPSC] = value & 0x01
            return True
        if register == INTC:
            self.regs[INTC] = value & 0x03
            return True
        if register == SCLR:
            self._clear_flags(value & 0x06)
            return True
        if register == AVE_UNLOCK:
            expected = AVE_UNLOCK_SEQUENCE[self._ave_progress] if self._ave_progress < 3 else None
            self._ave_progress = self._ave_progress + 1 if value == expected else 0
            return True
        if register == AVE:
            if self._ave_progress < 3:
                return False  # MAMOD may only change after the unlock sequence
            self.regs[AVE] = value & 0x20
            return True
        if register in INT_LEVELS:
            self.regs[register] = value & (0x0F if register % 2 else 0xFF)
            return True
        return False  # read-only or reserved

    def _clear_flags(self, bits: int) -> None:
        self.regs[STAT] &= ~bits & 0xFF
        if bits & 0x02:
            self.regs[INT_TABLE:INT_TABLE + 8] = bytes(8)

    # -- frames
    def _refresh(self, starts_frame_read: bool) -> None:
        if self.asleep:
            return
        if self._clock.speed is None:
            # Max speed: a frame read delivers the next frame. Right after a reset the first
            # read still sees the invalid (zeroed) registers, as it would on the real part.
            if starts_frame_read:
                if self._valid:
                    self._latch(1)
                else:
                    self._valid = True
            return
        # The epsilon keeps 0.1 + 0.1 from landing a hair before the second frame boundary.
        due = self._anchor_frame + int((self._clock.now() - self._anchor_time) / self._period() + 1e-9)
        if due > self.frame_number:
            self._latch(due - self.frame_number)
            self._valid = True

    def _latch(self, count: int) -> None:
        """Draw ``count`` frames from the source; the last one lands in the registers."""
        for _ in range(max(0, count - MAX_CATCH_UP_FRAMES)):
            self.source.next_frame()
        count = min(count, MAX_CATCH_UP_FRAMES)
        for _ in range(count - 1):
            self.source.next_frame()
        pixels, thermistor = self.source.next_frame()
        number = self.frame_number + count - 1
        self.frame_number += count
        if any(s.covers(number) and s.start_frame >= self._last_reset_frame for s in self._faults.stuck):
            self.stats["stuck_frames"] += 1
            return  # the array stopped converting: registers keep their old contents
        self.stats["frames"] += 1
        raw = np.asarray(pixels, dtype=np.float64).reshape(8, 8)
        celsius = raw
        if self.regs[AVE] & 0x20 and self._previous is not None:
            celsius = (raw + self._previous) / 2.0  # moving average of two conversions
        if self.regs[INTC] & 0x01:
            self._interrupts(celsius)
        self._previous = raw
        if self._faults.absurd and self._rng.random() < self._faults.absurd:
            self.stats["absurd_frames"] += 1
            celsius = celsius.copy()
            index = self._rng.randrange(64)
            celsius.flat[index] = self._rng.choice((-1, 1)) * self._rng.uniform(300.0, 511.0)
        self.regs[PIXELS:] = pixels_to_bytes(celsius)
        raw = celsius_to_thermistor_raw(self.default_thermistor if thermistor is None else thermistor)
        self.regs[TTHL], self.regs[TTHH] = raw & 0xFF, raw >> 8
        if thermistor is not None and not -20.0 <= thermistor <= 80.0:
            self.regs[STAT] |= 0x04  # OVF_IRS

    def _interrupts(self, celsius: np.ndarray) -> None:
        def level(low_register):
            raw = self.regs[low_register] | self.regs[low_register + 1] << 8
            return (raw - 0x1000 if raw & 0x800 else raw) * 0.25

        upper, lower = level(0x08), level(0x0A)
        absolute = bool(self.regs[INTC] & 0x02)
        values = celsius if absolute else celsius - (self._previous if self._previous is not None else celsius)
        flags = ((values > upper) | (values < lower)).reshape(64)
        table = np.packbits(flags.reshape(8, 8), axis=1, bitorder="little").reshape(8)
        self.regs[INT_TABLE:INT_TABLE + 8] = bytes(a | b for a, b in zip(self.regs[INT_TABLE:INT_TABLE + 8], table))
        if flags.any():
            self.regs[STAT] |= 0x02  # INTF

