"""AMG8833 conversions against the specification's own test vectors, and orientation."""

from __future__ import annotations

import numpy as np
import pytest

from thermalcount.errors import UsageError
from thermalcount.sensors.conversions import (
    Orientation,
    PixelDecoder,
    celsius_by_word,
    celsius_to_pixel_raw,
    celsius_to_thermistor_raw,
    parse_orientation,
    pixel_raw_to_celsius,
    pixels_from_bytes,
    pixels_to_bytes,
    thermistor_raw_to_celsius,
)

PIXEL_VECTORS = [(0x1F4, 125.0), (0x064, 25.0), (0x001, 0.25), (0x000, 0.0), (0xFFF, -0.25),
                 (0xF9C, -25.0), (0xF24, -55.0)]
THERMISTOR_VECTORS = [(0x7FF, 127.9375), (0x190, 25.0), (0x004, 0.25), (0x804, -0.25), (0xBBB, -59.6875)]


@pytest.mark.parametrize("raw, celsius", PIXEL_VECTORS)
def test_pixel_vectors(raw, celsius):
    assert pixel_raw_to_celsius(raw) == celsius
    assert celsius_to_pixel_raw(celsius) == raw


@pytest.mark.parametrize("raw, celsius", THERMISTOR_VECTORS)
def test_thermistor_vectors(raw, celsius):
    assert thermistor_raw_to_celsius(raw) == celsius
    assert celsius_to_thermistor_raw(celsius) == raw


def test_pixel_is_twos_complement_not_unsigned_or_sign_magnitude():
    # The classic bug: a negative pixel read as unsigned shows ~1000 °C; as sign-magnitude -511.75.
    assert pixel_raw_to_celsius(0xFFF) == -0.25
    assert pixel_raw_to_celsius(0x800) == -512.0
    assert pixel_raw_to_celsius(0x7FF) == 511.75


def test_thermistor_sign_bit_is_0x800():
    assert thermistor_raw_to_celsius(0x800) == 0.0  # "minus zero"
    assert thermistor_raw_to_celsius(0x801) == -0.0625
    # Bits above the 12 are not part of the value (the sign is NOT at 0x8000).
    assert thermistor_raw_to_celsius(0x8190) == 25.0
    assert thermistor_raw_to_celsius(0xF190) == 25.0


def test_upper_nibble_of_pixel_high_byte_is_ignored():
    assert pixel_raw_to_celsius(0xF064) == 25.0
    data = bytes([0x64, 0xF0] + [0, 0] * 63)
    assert pixels_from_bytes(data)[0] == 25.0


def test_vectorised_equals_scalar_for_every_12_bit_value():
    raws = np.arange(4096, dtype=np.uint16)
    for start in range(0, 4096, 64):
        block = raws[start:start + 64]
        data = block.astype("<u2").tobytes()
        vector = pixels_from_bytes(data)
        assert vector.dtype == np.float32 and vector.shape == (64,)
        assert list(vector) == [pixel_raw_to_celsius(int(r)) for r in block]


def test_the_lookup_table_equals_the_scalar_conversion_for_every_16_bit_word():
    table = celsius_by_word()
    assert table.dtype == np.float32 and table.shape == (65536,) and not table.flags.writeable
    assert list(table) == [pixel_raw_to_celsius(word) for word in range(65536)]  # upper nibble ignored too


def test_the_drivers_decoder_orients_and_refuses_implausible_pixels():
    rng = np.random.default_rng(4)
    celsius = np.round(rng.uniform(-30, 120, 64) * 4) / 4
    data = pixels_to_bytes(celsius)
    turn = parse_orientation("rotate=90,mirror=horizontal")
    decode = PixelDecoder(turn.permutation(), (-40.0, 150.0))
    pixels = decode(data)
    assert pixels.shape == (8, 8) and pixels.dtype == np.float32 and pixels.flags.writeable
    assert np.array_equal(pixels, turn.apply(pixels_from_bytes(data).reshape(8, 8)))
    for pixel, value in ((0, -40.25), (63, 150.25), (17, 511.75)):
        broken = celsius.copy()
        broken[pixel] = value
        assert decode(pixels_to_bytes(broken)) is None
    edges = celsius.copy()
    edges[:2] = (-40.0, 150.0)  # the bounds themselves are plausible
    assert decode(pixels_to_bytes(edges)) is not None


def test_pixels_from_bytes_byte_order_low_first():
    data = bytearray(128)
    data[2 * 5], data[2 * 5 + 1] = 0x9C, 0x0F  # pixel 6 = 0xF9C = -25 °C, low byte first
    values = pixels_from_bytes(bytes(data))
    assert values[5] == -25.0
    assert np.count_nonzero(values) == 1


def test_pixels_round_trip_and_clamp():
    rng = np.random.default_rng(1)
    celsius = np.round(rng.uniform(-60, 130, 64) * 4) / 4
    assert np.array_equal(pixels_from_bytes(pixels_to_bytes(celsius)), celsius.astype(np.float32))
    clamped = pixels_from_bytes(pixels_to_bytes(np.full(64, 9999.0)))
    assert np.all(clamped == 511.75)
    assert np.all(pixels_from_bytes(pixels_to_bytes(np.full(64, -9999.0))) == -512.0)


def test_scalar_encoders_round_to_resolution():
    assert celsius_to_pixel_raw(25.1) == 0x064
    assert celsius_to_thermistor_raw(25.03) == 0x190
    assert celsius_to_thermistor_raw(-0.01) == 0  # rounds to zero magnitude: no sign bit
    assert celsius_to_thermistor_raw(-500) == 0xFFF


# ------------------------------------------------------------------------- orientation

FRAME = np.arange(64).reshape(8, 8)  # FRAME[r, c] == pixel 8r+c+1 minus one


def test_identity_is_register_order_pixel_1_at_row0_col0():
    orientation = parse_orientation(None)
    assert orientation.is_identity
    assert np.array_equal(orientation.apply(FRAME), FRAME)
    assert str(orientation) == "rotate=0,mirror=none"


def test_rotate_90_is_clockwise_left_column_becomes_top_row():
    rotated = parse_orientation("rotate=90").apply(FRAME)
    assert list(rotated[0]) == list(FRAME[::-1, 0])
    assert rotated[0, 7] == FRAME[0, 0]


@pytest.mark.parametrize("text, expected", [
    ("rotate=180", FRAME[::-1, ::-1]),
    ("rotate=270", np.rot90(FRAME, 1)),
    ("mirror=horizontal", FRAME[:, ::-1]),
    ("mirror=vertical", FRAME[::-1, :]),
    ("rotate=90,mirror=horizontal", np.rot90(FRAME, -1)[:, ::-1]),
    (" Rotate = 180 , Mirror = Vertical ", FRAME[:, ::-1]),
])
def test_orientations(text, expected):
    orientation = parse_orientation(text)
    assert np.array_equal(orientation.apply(FRAME), expected)
    values = FRAME.reshape(64)
    assert np.array_equal(values[orientation.permutation()].reshape(8, 8), expected)


def test_orientation_applies_to_stacks():
    stack = np.stack([FRAME, FRAME + 100])
    out = parse_orientation("rotate=270,mirror=vertical").apply(stack)
    assert np.array_equal(out[1], parse_orientation("rotate=270,mirror=vertical").apply(FRAME + 100))


def test_orientation_string_round_trips():
    for rotate in (0, 90, 180, 270):
        for mirror in ("none", "horizontal", "vertical"):
            orientation = Orientation(rotate, mirror)
            assert parse_orientation(str(orientation)) == orientation


@pytest.mark.parametrize("text", ["rotate=45", "mirror=diagonal", "spin=90", "rotate", "rotate=ninety"])
def test_bad_orientation_is_a_usage_error(text):
    with pytest.raises(UsageError) as excinfo:
        parse_orientation(text)
    assert "\n" not in str(excinfo.value)
