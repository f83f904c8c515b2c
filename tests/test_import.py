"""``thermalcount import``: .npy and CSV frames into recordings, and every kind of bad input."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.errors import ImportFormatError, OutputPathError
from thermalcount.store.importer import BLOCK_FRAMES, import_frames
from thermalcount.store import open_recording, write_recording


@pytest.fixture
def frames():
    rng = np.random.default_rng(5)
    return np.round((21 + rng.normal(0, 1, (50, 8, 8))) * 4).astype(np.float32) / 4


def write_csv(path, rows, header=None, delimiter=","):
    lines = [] if header is None else [delimiter.join(header)]
    lines += [delimiter.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["import", *map(str, args)], catch_exceptions=False)


@pytest.mark.parametrize("shape", ["n88", "n64"])
def test_npy_round_trip(tmp_path, frames, shape):
    source = tmp_path / "f.npy"
    np.save(source, frames if shape == "n88" else frames.reshape(-1, 64).astype(np.float64))
    result = invoke(source, "--out", tmp_path / "r.h5", "--fps", "1")
    assert result.exit_code == 0, result.output
    assert "imported 50 frames" in result.output
    with open_recording(tmp_path / "r.h5") as rec:
        np.testing.assert_array_equal(rec.read(), frames)
        assert rec.fps == 1.0 and rec.attrs["sensor"] == "imported"
        np.testing.assert_allclose(np.diff(rec.timestamps()), 1.0)
        assert rec.events == []


def test_npy_bigger_than_one_block_is_imported_whole(tmp_path):
    big = np.broadcast_to(np.arange(BLOCK_FRAMES + 10, dtype=np.float32)[:, None, None] % 50,
                          (BLOCK_FRAMES + 10, 8, 8))
    np.save(tmp_path / "big.npy", big)
    import_frames(tmp_path / "big.npy", tmp_path / "r.h5")
    with open_recording(tmp_path / "r.h5") as rec:
        np.testing.assert_array_equal(rec.read(), big)


def test_csv_plain_with_header_with_timestamps_and_events(tmp_path, frames):
    flat = frames.reshape(-1, 64)
    write_csv(tmp_path / "plain.csv", flat.tolist())
    stamps = 1_700_000_000 + np.arange(50) * 0.1
    header = ["timestamp"] + [f"p{i}" for i in range(64)]
    write_csv(tmp_path / "timed.csv", [[f"{t:.1f}", *row] for t, row in zip(stamps, flat.tolist())],
              header=header, delimiter=";")
    write_csv(tmp_path / "ev.csv", [[3, "in"], [40, "OUT"]], header=["frame", "direction"])

    assert invoke(tmp_path / "plain.csv", "--out", tmp_path / "a.h5").exit_code == 0
    result = invoke(tmp_path / "timed.csv", "--out", tmp_path / "b.h5", "--events", tmp_path / "ev.csv")
    assert result.exit_code == 0, result.output
    assert "timestamps from the file" in result.output and "2 events" in result.output
    with open_recording(tmp_path / "a.h5") as rec:
        np.testing.assert_array_equal(rec.read(), frames)
    with open_recording(tmp_path / "b.h5") as rec:
        np.testing.assert_array_equal(rec.read(), frames)
        np.testing.assert_array_equal(rec.timestamps(), stamps.round(1))
        assert [(e.frame, e.direction) for e in rec.events] == [(3, "in"), (40, "out")]
        assert rec.attrs["ground_truth"] == "imported from ev.csv"
        assert rec.events[0].time == rec.timestamps()[3]


def test_csv_without_header_timestamp_first_column_and_iso_times(tmp_path, frames):
    rows = [[f"2024-05-01T10:00:{i:02d}Z", *frame] for i, frame in enumerate(frames.reshape(-1, 64).tolist())]
    write_csv(tmp_path / "iso.csv", rows)
    import_frames(tmp_path / "iso.csv", tmp_path / "r.h5")
    with open_recording(tmp_path / "r.h5") as rec:
        assert rec.timestamps()[0] == 1714557600.0 and rec.timestamps()[49] == 1714557649.0


def test_space_separated_like_numpy_savetxt(tmp_path, frames):
    np.savetxt(tmp_path / "s.txt", frames.reshape(-1, 64), fmt="%.2f")
    import_frames(tmp_path / "s.txt", tmp_path / "r.h5")
    with open_recording(tmp_path / "r.h5") as rec:
        np.testing.assert_array_equal(rec.read(), frames)


def _npy(data):
    def build(path):
        np.save(path.with_suffix(".npy"), data, allow_pickle=True)
        return path.with_suffix(".npy")
    return build


def _text(text, suffix=".csv"):
    def build(path):
        target = path.with_suffix(suffix)
        target.write_text(text)
        return target
    return build


ROW = ",".join(["21.0"] * 64)
NAN_FRAMES = np.full((3, 8, 8), 21.0, np.float32)
NAN_FRAMES[1, 2, 3] = np.nan
HOT_FRAMES = np.full((3, 8, 8), 294.15, np.float32)

BAD_SOURCES = {
    "npy 3d wrong": (_npy(np.zeros((5, 4, 4), np.float32)), r"shape \(5, 4, 4\).*\(N, 8, 8\)"),
    "npy 1d": (_npy(np.zeros(64, np.float32)), r"shape \(64,\)"),
    "npy empty": (_npy(np.zeros((0, 8, 8), np.float32)), "no frames"),
    "npy objects": (_npy(np.array([{"a": 1}, None], dtype=object)), "Python objects"),
    "npy strings": (_npy(np.array([["a"] * 64])), "must hold numbers"),
    "npy nan": (_npy(NAN_FRAMES), r"frame 1, pixel 19 \(row 2, column 3\) is nan"),
    "npy kelvin": (_npy(HOT_FRAMES), "Kelvin"),
    "npy garbage": (_text("not numpy at all", ".npy"), "not a .npy file"),
    "csv empty": (_text(""), "is empty"),
    "csv header only": (_text("," .join(f"p{i}" for i in range(64)) + "\n"), "no frames"),
    "csv short row": (_text(ROW + "\n" + ",".join(["21"] * 63) + "\n"), "line 2: 63 values, expected 64"),
    "csv text cell": (_text(ROW + "\n" + ROW.replace("21.0", "warm", 1).replace("21.0", "21.0") + "\n"),
                      "line 2 column 1: 'warm' is not a number"),
    "csv empty cell": (_text(ROW + "\n" + ",".join(["21"] * 10 + [""] + ["21"] * 53) + "\n"),
                       r"line 2 column 11: '\(empty\)' is not a number"),
    "csv nan": (_text(ROW + "\n" + ",".join(["21"] * 5 + ["nan"] + ["21"] * 58) + "\n"),
                "line 2 column 6: 'nan' is not a finite temperature"),
    "csv absurd": (_text(",".join(["21"] * 63 + ["480"]) + "\n"), "line 1 column 64: 480 is outside"),
    "csv bad header": (_text("a,b,c\n" + ROW + "\n"), "header has 3 columns"),
    "csv 65 unnamed": (_text(",".join(["x"] * 65) + "\n" + "1," + ROW + "\n"), "no single timestamp column"),
    "csv bad time": (_text("yesterday," + ROW + "\n"), "timestamp 'yesterday' is neither"),
    "csv time backwards": (_text("10," + ROW + "\n5," + ROW + "\n"), "line 2: timestamp goes backwards"),
}


@pytest.mark.parametrize("name", list(BAD_SOURCES))
def test_bad_sources_fail_in_one_line_and_leave_no_output(tmp_path, name):
    build, message = BAD_SOURCES[name]
    source = build(tmp_path / "source")
    out = tmp_path / "out.h5"
    result = invoke(source, "--out", out)
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(ImportFormatError, match=message):
        import_frames(source, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]  # no output, no temp file


EVENTS = {
    "unknown direction": ("frame,direction\n3,sideways\n", "direction 'sideways' must be 'in' or 'out'"),
    "frame out of range": ("5,in\n50,out\n", r"line 2: frame 50 is outside the recording \(frames 0..49\)"),
    "negative frame": ("-1,in\n", "frame -1 is outside"),
    "not a number": ("three,in\n", "header must be 'frame,direction'"),
    "fractional": ("3.5,in\n", "'3.5' is not a whole number"),
    "three columns": ("3,in,1.0\n", "3 values, expected frame,direction"),
}


@pytest.mark.parametrize("name", list(EVENTS))
def test_bad_events_fail_and_leave_no_output(tmp_path, frames, name):
    text, message = EVENTS[name]
    np.save(tmp_path / "f.npy", frames)
    (tmp_path / "ev.csv").write_text(text)
    with pytest.raises(ImportFormatError, match=message):
        import_frames(tmp_path / "f.npy", tmp_path / "out.h5", events_path=tmp_path / "ev.csv")
    assert not (tmp_path / "out.h5").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.csv", "f.npy"]


def test_existing_output_is_kept_unless_overwrite_and_input_is_valid(tmp_path, frames):
    out = write_recording(tmp_path / "r.h5", frames[:5])
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    np.save(tmp_path / "f.npy", frames)
    np.save(tmp_path / "bad.npy", NAN_FRAMES)

    refused = invoke(tmp_path / "f.npy", "--out", out)
    assert refused.exit_code != 0 and "--overwrite" in refused.output and "--append" not in refused.output
    with pytest.raises(ImportFormatError):  # bad input with --overwrite: the old file survives
        import_frames(tmp_path / "bad.npy", out, overwrite=True)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest

    assert invoke(tmp_path / "f.npy", "--out", out, "--overwrite").exit_code == 0
    with open_recording(out) as rec:
        assert rec.n_frames == 50


def test_missing_source_and_unwritable_output(tmp_path, frames):
    with pytest.raises(ImportFormatError, match="does not exist"):
        import_frames(tmp_path / "nope.npy", tmp_path / "r.h5")
    np.save(tmp_path / "f.npy", frames)
    with pytest.raises(OutputPathError, match="does not exist"):
        import_frames(tmp_path / "f.npy", tmp_path / "missing" / "r.h5")


# ------------------------------------------------------------------------ --orientation


def test_orientation_turns_the_stored_frames_and_says_so(tmp_path, frames):
    from thermalcount.sensors.conversions import parse_orientation

    np.save(tmp_path / "f.npy", frames)
    result = invoke(tmp_path / "f.npy", "--out", tmp_path / "turned.h5", "--orientation", "rotate=90,mirror=horizontal")
    assert result.exit_code == 0, result.output
    assert "turned rotate=90,mirror=horizontal" in result.output
    with open_recording(tmp_path / "turned.h5") as rec:
        np.testing.assert_array_equal(rec.read(), frames.transpose(0, 2, 1))  # that one is a transpose
        assert rec.attrs["orientation"] == "rotate=90,mirror=horizontal"
    write_csv(tmp_path / "f.csv", frames.reshape(-1, 64).tolist())
    import_frames(tmp_path / "f.csv", tmp_path / "csv.h5", orientation="rotate=180")
    with open_recording(tmp_path / "csv.h5") as rec:
        np.testing.assert_array_equal(rec.read(), parse_orientation("rotate=180").apply(frames))
        assert rec.attrs["orientation"] == "rotate=180,mirror=none"
    import_frames(tmp_path / "f.npy", tmp_path / "plain.h5")
    with open_recording(tmp_path / "plain.h5") as rec:
        np.testing.assert_array_equal(rec.read(), frames)
        assert rec.attrs["orientation"] == "as in the source file"


def test_a_bad_value_is_named_where_it_is_in_the_source_whatever_the_orientation(tmp_path, frames):
    broken = frames.copy()
    broken[1, 2, 3] = np.nan
    np.save(tmp_path / "f.npy", broken)
    with pytest.raises(ImportFormatError, match=r"frame 1, pixel 19 \(row 2, column 3\)"):
        import_frames(tmp_path / "f.npy", tmp_path / "r.h5", orientation="rotate=90")


@pytest.mark.parametrize("value, words", [("auto", "count and run"), ("rotate=45", "rotate=45"),
                                          ("upside down", "not understood")])
def test_a_bad_orientation_is_one_line_and_leaves_no_output(tmp_path, frames, value, words):
    np.save(tmp_path / "f.npy", frames)
    result = invoke(tmp_path / "f.npy", "--out", tmp_path / "r.h5", "--orientation", value)
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert words in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]
