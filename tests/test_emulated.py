"""The emulated AMG8833 below smbus2: its file layer, kernel-structure decoding, register map, faults.

These tests talk to the emulated part with the REAL ``smbus2.SMBus`` code, as the driver does.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os

import numpy as np
import pytest
import smbus2
import smbus2.smbus2 as smbus2_module
from smbus2 import SMBus, i2c_msg

from thermalcount.errors import UsageError
from thermalcount.sensors.conversions import pixels_from_bytes
from thermalcount.sensors.emulated.bus import AMG8833Device, EmulatedI2CBus, FakeClock
from thermalcount.sensors.emulated.faults import Disconnect, FaultPlan, Stuck

ADDRESS = 0x69
PATTERN = 20.0 + 0.25 * np.arange(64, dtype=np.float64).reshape(8, 8)


def numbered_frame(index: int) -> np.ndarray:
    """A frame whose pixel (0, 0) encodes its index (10 °C + index/4), the rest a fixed pattern."""
    frame = PATTERN.copy()
    frame[0, 0] = 10.0 + 0.25 * (index % 400)
    return frame


def frame_index(pixels) -> int:
    return int(round((float(np.asarray(pixels).reshape(64)[0]) - 10.0) / 0.25))


@pytest.fixture
def make_bus():
    """An emulated bus with one part at ADDRESS; ``bus.smbus()`` opens a real SMBus on it."""

    def make(number=41, *, source=numbered_frame, faults=None, speed=None, clock=None, fps=10.0, **device_kw):
        bus = EmulatedI2CBus(number, faults=faults, speed=speed, clock=clock, fps=fps)
        bus.attach(ADDRESS, AMG8833Device(source, **device_kw))
        return bus

    return make


def read_pixels(smbus: SMBus) -> bytes:
    write, read = i2c_msg.write(ADDRESS, [0x80]), i2c_msg.read(ADDRESS, 128)
    smbus.i2c_rdwr(write, read)
    return bytes(read)


# ------------------------------------------------------------------ the file layer below smbus2


def test_the_bus_is_a_real_smbus2_running_its_own_code_and_nothing_is_patched(make_bus):
    real_os, real_ioctl = smbus2_module.os, smbus2_module.ioctl
    bus = make_bus()
    with bus.smbus() as smbus:
        assert isinstance(smbus, SMBus)
        for name in ("open", "close", "i2c_rdwr", "read_byte_data", "write_byte_data", "_get_funcs"):
            assert getattr(type(smbus), name).__code__ is getattr(SMBus, name).__code__  # smbus2's own lines
        smbus.read_byte_data(ADDRESS, 0x02)
        assert bus.stats["smbus"] == 1
    # smbus2 itself is untouched: the module still talks to the real os and fcntl.ioctl.
    assert smbus2_module.os is real_os is os and smbus2_module.ioctl is real_ioctl is fcntl.ioctl
    with pytest.raises(FileNotFoundError):
        SMBus(bus.number)  # a plain SMBus reaches the kernel, which has no such bus here


def test_a_bus_number_other_than_its_own_is_missing(make_bus):
    bus = make_bus(number=42)
    with pytest.raises(FileNotFoundError):
        bus.smbus(43)
    assert bus.stats["opens"] == 0


def test_each_open_gets_a_real_unique_fd(make_bus):
    bus = make_bus()
    with bus.smbus() as first, bus.smbus() as second:
        assert first.fd != second.fd
        os.fstat(first.fd)  # a real descriptor
        assert first.funcs & smbus2.I2cFunc.I2C
        assert first.funcs & smbus2.I2cFunc.SMBUS_BYTE_DATA
        assert not first.funcs & smbus2.I2cFunc.SMBUS_READ_BLOCK_DATA  # like the Pi's adapter
        fd = first.fd
    with pytest.raises(OSError):
        os.fstat(fd)  # closed for real
    assert bus.stats["opens"] == 2


# ------------------------------------------------------------------ transfers and registers


def test_combined_read_returns_twos_complement_pixels_in_place(make_bus):
    frame = PATTERN.copy()
    frame[2, 3], frame[7, 7] = -25.0, -0.25
    bus = make_bus(source=lambda i: (frame, -5.5))
    with bus.smbus() as smbus:
        smbus.write_byte_data(ADDRESS, 0x01, 0x3F)
        assert read_pixels(smbus) == bytes(128)  # first read after a reset: not valid yet
        data = read_pixels(smbus)
        assert np.array_equal(pixels_from_bytes(data).reshape(8, 8), frame)
        assert data[2 * 19:2 * 19 + 2] == bytes([0x9C, 0x0F])  # pixel 20 = -25 °C = 0xF9C
        word = smbus.read_word_data(ADDRESS, 0x0E)
        assert word == 0x800 | 88  # -5.5 °C sign-magnitude: 88 * 0.0625
    kinds = [t for t in bus.transfers if t[0] == "rdwr"]
    assert kinds[-1] == ("rdwr", (("w", ADDRESS, b"\x80"), ("r", ADDRESS, 128)))


def test_speed_max_delivers_the_next_frame_on_every_pixel_read(make_bus):
    bus = make_bus()
    with bus.smbus() as smbus:
        read_pixels(smbus)  # invalid data right after power-on
        indices = [frame_index(pixels_from_bytes(read_pixels(smbus))) for _ in range(5)]
    assert indices == [0, 1, 2, 3, 4]
    assert bus.device.stats["pixel_reads"] == 6


def test_real_time_frames_follow_the_device_clock(make_bus):
    clock = FakeClock()
    bus = make_bus(speed=1.0, clock=clock)
    with bus.smbus() as smbus:
        clock.advance(0.1)
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 0
        clock.advance(0.05)
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 0  # no new frame yet
        clock.advance(0.05)
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 1
        smbus.write_byte_data(ADDRESS, 0x02, 0x01)  # 1 FPS
        clock.advance(0.5)
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 1
        clock.advance(0.5)
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 2
        clock.advance(3.0)  # frames in between are drawn and skipped, as the real part would
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 5


def test_speed_scales_device_time(make_bus):
    clock = FakeClock()
    bus = make_bus(speed=10.0, clock=clock)
    with bus.smbus() as smbus:
        clock.advance(0.1)  # one real tenth of a second = ten device frames
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 9


def test_register_map_reset_and_read_only(make_bus):
    bus = make_bus()
    device = bus.device
    with bus.smbus() as smbus:
        smbus.write_byte_data(ADDRESS, 0x02, 0x01)
        smbus.write_byte_data(ADDRESS, 0x03, 0x03)
        smbus.write_byte_data(ADDRESS, 0x08, 0x78)
        smbus.write_byte_data(ADDRESS, 0x09, 0xFF)  # high byte: only 4 bits exist
        assert smbus.read_byte_data(ADDRESS, 0x02) == 0x01
        assert smbus.read_byte_data(ADDRESS, 0x03) == 0x03
        assert smbus.read_i2c_block_data(ADDRESS, 0x08, 2) == [0x78, 0x0F]
        smbus.write_byte_data(ADDRESS, 0x04, 0xFF)  # STAT is read-only
        assert smbus.read_byte_data(ADDRESS, 0x04) == 0
        assert smbus.read_byte_data(ADDRESS, 0x01) == 0  # RST is write-only
        smbus.write_byte_data(ADDRESS, 0x01, 0x3F)  # initial reset: back to defaults
        assert [smbus.read_byte_data(ADDRESS, r) for r in (0x02, 0x03, 0x08)] == [0, 0, 0]
    assert (0x04, 0xFF, False) in [w[1:] for w in device.writes]
    assert device.stats["initial_resets"] == 1


def test_sleep_mode_accepts_only_wake_and_reads_are_invalid(make_bus):
    bus = make_bus()
    device = bus.device
    with bus.smbus() as smbus:
        read_pixels(smbus)
        assert read_pixels(smbus) != bytes(128)
        smbus.write_byte_data(ADDRESS, 0x00, 0x10)  # sleep
        smbus.write_byte_data(ADDRESS, 0x02, 0x01)  # ignored while asleep
        assert read_pixels(smbus) == bytes(128)
        smbus.write_byte_data(ADDRESS, 0x00, 0x00)  # wake
        assert smbus.read_byte_data(ADDRESS, 0x02) == 0
    assert [w[1:] for w in device.writes][-3:] == [(0x00, 0x10, True), (0x02, 0x01, False), (0x00, 0x00, True)]
    assert device.stats["sleep_reads"] >= 1


def test_moving_average_needs_the_unlock_sequence(make_bus):
    frames = [np.full((8, 8), 20.0), np.full((8, 8), 30.0), np.full((8, 8), 20.0)]
    bus = make_bus(source=lambda i: frames[i % 3])
    with bus.smbus() as smbus:
        smbus.write_byte_data(ADDRESS, 0x07, 0x20)  # not unlocked: ignored
        assert smbus.read_byte_data(ADDRESS, 0x07) == 0
        for value in (0x50, 0x45, 0x57):
            smbus.write_byte_data(ADDRESS, 0x1F, value)
        smbus.write_byte_data(ADDRESS, 0x07, 0x20)
        smbus.write_byte_data(ADDRESS, 0x1F, 0x00)
        assert smbus.read_byte_data(ADDRESS, 0x07) == 0x20
        read_pixels(smbus)
        seen = [pixels_from_bytes(read_pixels(smbus))[0] for _ in range(3)]
    assert seen == [20.0, 25.0, 25.0]  # each frame averaged with the one before


def test_interrupt_table_absolute_mode_and_clear(make_bus):
    frame = np.full((8, 8), 22.0)
    frame[1, 2] = 40.0  # pixel 8*1+2+1 = 11 -> INT1 bit 2
    bus = make_bus(source=lambda i: frame)
    with bus.smbus() as smbus:
        smbus.write_i2c_block_data(ADDRESS, 0x08, [30 * 4 & 0xFF, 30 * 4 >> 8, 0, 0])  # upper 30, lower 0 °C
        smbus.write_byte_data(ADDRESS, 0x03, 0x03)  # absolute mode, enabled
        read_pixels(smbus)
        read_pixels(smbus)
        assert smbus.read_byte_data(ADDRESS, 0x04) & 0x02  # INTF
        assert smbus.read_i2c_block_data(ADDRESS, 0x10, 8) == [0, 0b100, 0, 0, 0, 0, 0, 0]
        smbus.write_byte_data(ADDRESS, 0x05, 0x02)  # INTCLR
        assert smbus.read_byte_data(ADDRESS, 0x04) == 0
        assert smbus.read_i2c_block_data(ADDRESS, 0x10, 8) == [0] * 8


def test_wrong_address_gets_no_ack_and_block_data_is_unsupported(make_bus):
    bus = make_bus()
    with bus.smbus() as smbus:
        with pytest.raises(OSError) as excinfo:
            smbus.read_byte_data(0x68, 0x02)
        assert excinfo.value.errno == errno.EREMOTEIO
        with pytest.raises(OSError) as excinfo:
            smbus.i2c_rdwr(i2c_msg.write(0x68, [0x80]), i2c_msg.read(0x68, 128))
        assert excinfo.value.errno == errno.EREMOTEIO
        with pytest.raises(OSError) as excinfo:
            smbus.read_block_data(ADDRESS, 0x80)
        assert excinfo.value.errno == errno.EOPNOTSUPP
    assert bus.stats["nacks"] == 2


# ------------------------------------------------------------------ faults


def test_fault_plan_parsing():
    plan = FaultPlan.parse("errno=5:0.02, errno=110:1%,disconnect=3s@10s,vanish=500ms@1m,stuck=50@200,"
                           "stuck=inf@900,absurd=0.01,open=13,busy,seed=7")
    assert plan.errors == {5: 0.02, 110: 0.01}
    assert plan.disconnects == [Disconnect(10.0, 3.0, "nack"), Disconnect(60.0, 0.5, "vanish")]
    assert plan.stuck == [Stuck(200, 50), Stuck(900, math.inf)]
    assert (plan.absurd, plan.open_errno, plan.busy, plan.seed) == (0.01, 13, True, 7)
    assert FaultPlan.parse(plan) is plan
    assert FaultPlan.parse(None) == FaultPlan() == FaultPlan.parse("")
    assert plan.disconnect_at(11.0).mode == "nack" and plan.disconnect_at(13.0) is None


@pytest.mark.parametrize("text", ["errno=5:2", "errno=x", "disconnect=3x@1s", "stuck=a@1", "wobble=1", "absurd=-1"])
def test_bad_fault_plans_are_usage_errors(text):
    with pytest.raises(UsageError) as excinfo:
        FaultPlan.parse(text)
    assert text.split(",")[0] in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_injected_errno_rate_is_seeded_and_counted(make_bus):
    bus = make_bus(faults="errno=5:0.25,seed=3")
    failures = 0
    with bus.smbus() as smbus:
        for _ in range(400):
            try:
                read_pixels(smbus)
            except OSError as error:
                assert error.errno == errno.EIO
                failures += 1
    assert failures == bus.stats["errno_5"]
    assert 60 < failures < 140


def test_open_errno_and_busy(make_bus):
    bus = make_bus(number=43, faults="open=13")
    with pytest.raises(PermissionError):
        bus.smbus()
    assert bus.stats["open_errors"] == 1
    busy = make_bus(number=44, faults="busy")
    with busy.smbus() as smbus:
        with pytest.raises(OSError) as excinfo:
            smbus.read_byte_data(ADDRESS, 0x02)
        assert excinfo.value.errno == errno.EBUSY
    with busy.smbus(force=True) as smbus:  # I2C_SLAVE_FORCE is allowed, as in the kernel
        smbus.read_byte_data(ADDRESS, 0x02)
    assert busy.stats["smbus"] == 1


def test_disconnect_nacks_then_powers_up_with_defaults(make_bus):
    clock = FakeClock()
    bus = make_bus(speed=1.0, clock=clock, faults="disconnect=1s@2s")
    with bus.smbus() as smbus:
        smbus.write_byte_data(ADDRESS, 0x02, 0x01)
        clock.advance(2.5)
        with pytest.raises(OSError) as excinfo:
            read_pixels(smbus)
        assert excinfo.value.errno == errno.EREMOTEIO
        clock.advance(1.0)
        assert smbus.read_byte_data(ADDRESS, 0x02) == 0  # power-on default again
    assert [kind for _, kind, _ in bus.events] == ["disconnect", "reconnect"]
    assert bus.device.stats["power_ons"] == 2


def test_vanish_removes_the_device_file(make_bus):
    clock = FakeClock()
    bus = make_bus(number=45, speed=1.0, clock=clock, faults="vanish=1s@1s")
    smbus = bus.smbus()
    clock.advance(1.2)
    with pytest.raises(OSError) as excinfo:
        smbus.read_byte_data(ADDRESS, 0x02)
    assert excinfo.value.errno == errno.ENODEV
    smbus.close()
    with pytest.raises(FileNotFoundError):
        bus.smbus()
    clock.advance(1.0)
    with bus.smbus() as again:
        assert again.read_byte_data(ADDRESS, 0x02) == 0
    assert bus.stats["open_errors"] == 1


def test_stuck_registers_until_initial_reset(make_bus):
    bus = make_bus(faults="stuck=inf@3")
    with bus.smbus() as smbus:
        read_pixels(smbus)
        seen = [frame_index(pixels_from_bytes(read_pixels(smbus))) for _ in range(6)]
        assert seen == [0, 1, 2, 2, 2, 2]
        smbus.write_byte_data(ADDRESS, 0x01, 0x3F)
        read_pixels(smbus)  # invalid right after the reset
        assert frame_index(pixels_from_bytes(read_pixels(smbus))) == 6  # frames 3-5 were lost
    assert bus.device.stats["stuck_frames"] == 3


def test_absurd_values_are_impossible_temperatures(make_bus):
    bus = make_bus(faults="absurd=1")
    with bus.smbus() as smbus:
        read_pixels(smbus)
        values = pixels_from_bytes(read_pixels(smbus))
    assert np.abs(values).max() >= 300
    assert bus.device.stats["absurd_frames"] == 1
