"""Issue 14, classes 3, 6 and 7: `run` stays alive, secrets stay out of outputs, no floods.

In the style of tests/test_bad_input.py: each case runs the real command (in a subprocess
where a stream, a FIFO or a file-size limit is part of the case) and checks the exit code,
one-line messages, no traceback and that no input changed. The subprocess timeouts are hang
guards, not measurements: the old code hung on a FIFO without a reader.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from tests.file_hashes import file_hashes

sys.path.insert(0, str(Path(__file__).parent))
from mqtt_broker import broker, observers  # noqa: E402,F401

RUN = [sys.executable, "-m", "thermalcount", "run", "--sensor", "sim", "--speed", "max", "--lights", "none",
       "--no-dashboard"]
HANG_GUARD = 120  # seconds; a run of 5 simulated minutes takes about 2 s


def _run(args, *, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=None, env=None):
    result = subprocess.run(args, stdout=stdout, stderr=stderr, timeout=HANG_GUARD, preexec_fn=preexec_fn,
                            env={**os.environ, **(env or {})})
    out = result.stdout.decode() if isinstance(result.stdout, bytes) else ""
    err = result.stderr.decode() if isinstance(result.stderr, bytes) else ""
    return result.returncode, out, err


SIM = "SIMULATED sensor (sim): "


def _json_lines(path: Path) -> list:
    """Every line of an event log; fails on a torn or missing final newline."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-80:]
    return [json.loads(line) for line in data.decode().splitlines()]


def _one(lines: str, pattern: str) -> None:
    hits = [line for line in lines.splitlines() if re.search(pattern, line)]
    assert len(hits) == 1, lines


# -- 14.3: the event log fails, `run` goes on -------------------------------------------------

def test_events_out_to_dev_full_keeps_counting():
    code, out, err = _run(RUN + ["--duration", "5m", "--events-out", "/dev/full"])
    assert code == 0, err
    assert "Traceback" not in err and "Error:" not in err
    _one(err, r"event log /dev/full cannot be written \(No space left on device\); counting goes on")
    # Simulated runs say so at the start of every line (issue 15.1).
    stopped = [line for line in err.splitlines() if line.startswith(f"{SIM}stopped (duration): 3000 frames")]
    assert stopped and not stopped[0].endswith("0 in, 0 out, occupancy 0"), err
    assert len(re.findall(rf"^\S+ \S+ {re.escape(SIM)}(in |out) frame", err, re.M)) >= 10  # events still counted and said


def _limit_file_size(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_disk_full_mid_line_leaves_whole_lines_only(tmp_path):
    """A file-size limit is a disk that fills up mid-run: the write stops part-way into a line."""
    log = tmp_path / "events.jsonl"
    earlier = b"".join(json.dumps({"frame": i, "direction": "in"}).encode() + b"\n" for i in range(100))
    log.write_bytes(earlier)
    # Room for a few events and then part of one (an event line is about 70 bytes).
    code, out, err = _run(RUN + ["--duration", "5m", "--events-out", str(log)],
                          preexec_fn=_limit_file_size(len(earlier) + 250))
    assert code == 0, err
    assert "Traceback" not in err and "Error:" not in err
    _one(err, r"event log .* cannot be written \(File too large\)")
    events = _json_lines(log)  # no torn line
    assert log.read_bytes().startswith(earlier) and len(events) > 100
    assert [e["frame"] for e in events[100:]] == sorted(e["frame"] for e in events[100:])


@pytest.mark.slow
@pytest.mark.parametrize("tail, kept", [
    pytest.param(b'{"frame": 7, "time": 1.0, "direction": "i', b"", id="torn-line-dropped"),
    pytest.param(b'{"frame": 7, "time": 1.0, "direction": "in", "occupancy": 1}',
                 b'{"frame": 7, "time": 1.0, "direction": "in", "occupancy": 1}\n', id="whole-object-completed"),
])
def test_torn_last_line_is_repaired_before_appending(tmp_path, tail, kept):
    log = tmp_path / "events.jsonl"
    good = b'{"frame": 1, "time": 0.1, "direction": "in", "occupancy": 1}\n'
    log.write_bytes(good + tail)
    code, out, err = _run(RUN + ["--duration", "2m", "--events-out", str(log)])
    assert code == 0, err
    _one(err, r"event log .* (ended in a torn line .* dropped it|ended without a newline; completed)")
    events = _json_lines(log)
    assert log.read_bytes().startswith(good + kept) and len(events) > 1 + bool(kept)


@pytest.mark.parametrize("name, content", [
    pytest.param("notes.txt", b"shopping: milk\n", id="text-file"),
    pytest.param("events.jsonl", b'{"frame": 1}\nnot json at the end', id="jsonl-ending-in-text", marks=pytest.mark.slow),
    pytest.param("recording.h5", None, id="recording-given-by-mistake", marks=pytest.mark.slow),
])
def test_events_out_to_a_file_that_is_not_an_event_log_is_refused_unchanged(tmp_path, name, content):
    target = tmp_path / name
    if content is None:
        from thermalcount.store import write_recording

        import numpy as np
        frames = np.full((30, 8, 8), 22.0, np.float32)
        frames[:, :, 0] = 23.0
        write_recording(target, frames, fps=10.0)
        if target.read_bytes().endswith(b"\n"):  # the case the old code appended to without a word
            target.write_bytes(target.read_bytes() + b"\0")
    else:
        target.write_bytes(content)
    before = file_hashes(tmp_path)
    code, out, err = _run(RUN + ["--duration", "1m", "--events-out", str(target)])
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    _one(err, r"^Error: the event log .* exists and is not a JSON-lines event log \(.*\); it was left as it is")
    assert file_hashes(tmp_path) == before


@pytest.mark.slow
def test_events_out_to_fifo_without_reader_is_refused(tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    code, out, err = _run(RUN + ["--duration", "1m", "--events-out", str(fifo)])
    assert code == 1
    assert err.count("Error:") == 1 and "Traceback" not in err
    _one(err, r"^Error: the event log .*events\.fifo is a FIFO with no reader; start the program that reads it")


@pytest.mark.slow
def test_events_out_to_fifo_whose_reader_goes_away_keeps_counting(tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    # A reader that is there before `run` starts (our own write end keeps it from seeing an
    # end of file before `run` has opened the FIFO), reads one line and goes away.
    read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(fifo, os.O_WRONLY)
    os.set_blocking(read_fd, True)
    received = []

    def read_one_line():
        with os.fdopen(read_fd, "rb") as handle:
            received.append(handle.readline())

    reader = threading.Thread(target=read_one_line, daemon=True)
    reader.start()
    try:
        code, out, err = _run(RUN + ["--duration", "30m", "--events-out", str(fifo)])
    finally:
        os.close(keep_open)
    reader.join(HANG_GUARD)
    assert code == 0, err
    assert "Error:" not in err and "Traceback" not in err
    assert json.loads(received[0])["direction"] in ("in", "out")  # a whole line
    _one(err, r"event log .*events\.fifo cannot be written \(the reader went away\)")
    assert re.search(rf"^{re.escape(SIM)}stopped \(duration\): 18000 frames", err, re.M), err


@pytest.mark.parametrize("streams", [
    pytest.param({"stdout": "full"}, id="stdout-full", marks=pytest.mark.slow),
    pytest.param({"stderr": "full"}, id="stderr-full", marks=pytest.mark.slow),
    pytest.param({"stdout": "full", "stderr": "full"}, id="both-full", marks=pytest.mark.slow),
    pytest.param({"stdout": "closed-pipe"}, id="stdout-reader-gone", marks=pytest.mark.slow),
])
def test_full_or_closed_output_streams_do_not_end_run(tmp_path, streams):
    opened = {}
    for name, kind in streams.items():
        if kind == "full":
            opened[name] = open("/dev/full", "wb")
        else:
            read_end, write_end = os.pipe()
            os.close(read_end)  # the reader went away: every write is EPIPE
            opened[name] = os.fdopen(write_end, "wb")
    log = tmp_path / "events.jsonl"
    args = [*RUN, "--duration", "5m", "--events-out", str(log)]
    args[args.index("none")] = "console"  # a line per light change on stdout
    try:
        code, out, err = _run(args, stdout=opened.get("stdout", subprocess.PIPE),
                              stderr=opened.get("stderr", subprocess.PIPE))
    finally:
        for handle in opened.values():
            handle.close()
    assert code == 0, err
    assert "Traceback" not in err and "Error:" not in err
    assert len(_json_lines(log)) >= 10  # counting went on


def test_event_log_holds_events_while_a_pipe_is_full_and_says_each_change_once(tmp_path, caplog):
    from thermalcount.runtime.event_log import EventLog

    caplog.set_level(logging.INFO, logger="thermalcount")
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    now = [0.0]
    log = EventLog.open(str(fifo), max_held=500, clock=lambda: now[0])
    try:
        for frame in range(3000):  # about 200 KB: more than a pipe holds (64 KB)
            log.append({"frame": frame, "direction": "in", "padding": "x" * 10})
        assert log.failing == "the reader is not keeping up" and log.dropped > 0
        got = b""
        while True:
            try:
                chunk = os.read(reader, 1 << 16)
            except BlockingIOError:
                chunk = b""
            if chunk:
                got += chunk
                continue
            if not log.pending:
                break
            now[0] += 10  # the next retry is due
            log.retry()
        frames = [json.loads(line)["frame"] for line in got.decode().splitlines()]
        # Whole lines in order; the oldest held ones dropped when more than 500 waited.
        assert frames == sorted(frames) and frames[-1] == 2999
        assert len(frames) + log.dropped == 3000 and log.failing is None
    finally:
        log.close()
        os.close(reader)
    messages = [r.getMessage() for r in caplog.records if r.name == "thermalcount.events"]
    assert sum("cannot be written" in m for m in messages) == 1
    assert sum("works again (" in m for m in messages) == 1
    assert any(f"{log.dropped} dropped so far" in m for m in messages if "works again (" in m)
    assert not any("before stopping" in m for m in messages)  # all written by then


# -- 14.6: no password in any output --------------------------------------------------------

SECRET = "S3cretPW"


def _config_dir(tmp_path, toml: str) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "config.toml").write_text(toml)
    return folder


SECRET_CASES = [
    # (id, arguments, config.toml or None, exit code)
    ("run-port-out-of-range", ["run", "--mqtt", f"mqtt://door:{SECRET}@localhost:99999"], None, 1),
    ("run-port-not-a-number", ["run", "--mqtt", f"mqtt://door:{SECRET}@localhost:port"], None, 1),
    ("run-wrong-scheme", ["run", "--mqtt", f"http://door:{SECRET}@localhost"], None, 1),
    ("run-token-only", ["run", "--mqtt", f"ftp://{SECRET}@localhost:99999"], None, 1),
    ("run-at-in-password", ["run", "--mqtt", f"mqtt://door:p@{SECRET}@localhost:99999"], None, 1),
    ("room-config-url", ["room", "--name", "hall", "--door", "front"],
     f'[mqtt]\nurl = "mqtt://door:{SECRET}@localhost:99999"\n', 1),
    ("room-config-url-scheme", ["room", "--name", "hall", "--door", "front"],
     f'[mqtt]\nurl = "tcp://door:{SECRET}@localhost"\n', 1),
    ("run-port-hex", ["run", "--mqtt", f"mqtt://door:{SECRET}@localhost:0x1"], None, 1),
    ("room-flag-port-out-of-range", ["room", "--name", "hall", "--door", "front", "--mqtt",
                                     f"mqtt://door:{SECRET}@localhost:99999"], None, 1),
    ("run-option-value-quoted-by-click", ["run", "--duration", f"mqtt://door:{SECRET}@localhost"], None, 2),
]


# Each subprocess case takes about a second; the fast subset keeps one per command (and the
# click usage-error case, which needs no subprocess run time); the rest run with -m slow.
FAST_SECRET_CASES = {"run-port-out-of-range", "room-config-url", "run-option-value-quoted-by-click"}


@pytest.mark.parametrize("row, args, toml, exit_code", [
    pytest.param(*case, id=case[0], marks=() if case[0] in FAST_SECRET_CASES else pytest.mark.slow)
    for case in SECRET_CASES])
def test_no_password_in_any_output(tmp_path, row, args, toml, exit_code):
    env = {}
    if toml is not None:
        env["THERMALCOUNT_CONFIG_DIR"] = str(_config_dir(tmp_path, toml))
    log = tmp_path / "events.jsonl"
    extra = ["--lights", "none", "--no-dashboard", "--sensor", "sim", "--events-out", str(log)] \
        if args[0] == "run" else ["--lights", "none", "--no-dashboard"]
    before = file_hashes(tmp_path)
    code, out, err = _run([sys.executable, "-m", "thermalcount", *args, *extra], env=env)
    assert code == exit_code, err
    assert "Traceback" not in err and err.count("Error:") == 1, err
    if exit_code == 1:  # usage errors (2) come with click's usage lines
        assert len(err.strip().splitlines()) == 1, err
    outputs = out + err + (log.read_text() if log.exists() else "")
    assert SECRET not in outputs and "***" in err, outputs
    after = file_hashes(tmp_path)
    assert {name: after.get(name) for name in before} == before  # the config file untouched



def test_internal_error_line_is_redacted(monkeypatch, capsys):
    """The last-resort path: an unexpected exception quoting a URL or a remembered password."""
    from thermalcount import cli as cli_module
    from thermalcount.app import run as session

    monkeypatch.setenv("THERMALCOUNT_MQTT_PASSWORD", "an0therSecret")
    from thermalcount import config

    assert config.mqtt_password() == "an0therSecret"  # read, so remembered

    def explode(options, **kwargs):
        raise RuntimeError(f"failed on mqtt://door:{SECRET}@broker with an0therSecret")

    monkeypatch.setattr(session, "run_session", explode)

    with pytest.raises(SystemExit) as exited:
        cli_module.main(["run", "--lights", "none", "--no-dashboard"])
    captured = capsys.readouterr()
    assert exited.value.code == 70
    assert SECRET not in captured.err and "an0therSecret" not in captured.err, captured.err
    assert captured.err.startswith("Error: internal error (RuntimeError: failed on mqtt://door:***@broker with ***)")
    from thermalcount.support.redaction import forget_secrets

    forget_secrets()


def test_click_runner_error_line_is_redacted():
    result = CliRunner().invoke(cli, ["run", "--mqtt", f"mqtt://door:{SECRET}@localhost:99999"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert SECRET not in result.output and "mqtt://door:***@localhost:99999" in result.output


# -- 14.7: floods and hangs ------------------------------------------------------------------

def test_junk_mqtt_commands_are_said_once_a_minute_with_a_count(broker):  # noqa: F811
    from thermalcount.mqtt.door import DoorPublisher
    from mqtt_broker import Observer

    received, notices = [], []
    got = threading.Event()
    door = DoorPublisher(broker.url, door="hall", reconnect_delay=(0.05, 0.3), reporter=notices.append,
                         on_command=lambda cmd, value: (received.append((cmd, value)), got.set()))
    sender = Observer(broker.port, "thermalcount/door/hall/availability")
    try:
        door.start()
        sender.wait_payload("thermalcount/door/hall/availability", "online")
        for index in range(200):  # a flood from any client on the broker
            sender.publish("thermalcount/door/hall/set", f"junk {index}")
        sender.publish("thermalcount/door/hall/set", "4")  # delivered after the junk (same topic)
        assert got.wait(HANG_GUARD)
        assert received == [("set", 4)]
        assert len(notices) == 1 and notices[0].startswith("ignored a message on thermalcount/door/hall/set")
    finally:
        door.close()
        sender.close()
    assert notices[1:] == ["199 more junk commands ignored since the last notice"]


def test_junk_room_commands_are_said_once_a_minute_with_a_count(broker):  # noqa: F811
    from mqtt_broker import Observer

    from thermalcount.mqtt.room import RoomService

    notices, done = [], threading.Event()
    room = RoomService(broker.url, name="office", doors=["front"], reconnect_delay=(0.05, 0.3),
                       reporter=lambda message: (notices.append(message), "by hand" in message and done.set()))
    room.start()
    runner = threading.Thread(target=room.run, daemon=True)
    runner.start()
    sender = Observer(broker.port, room.topics.availability)
    try:
        sender.wait_payload(room.topics.availability, "online")
        for index in range(100):
            sender.publish(room.topics.set, f"junk {index}")
        sender.publish(room.topics.set, "2")  # after the junk on the same topic
        assert done.wait(HANG_GUARD)
        junk = [n for n in notices if "ignored" in n]
        assert len(junk) == 1 and junk[0].startswith("ignored a message on thermalcount/room/office/set")
    finally:
        room.stop()
        runner.join(HANG_GUARD)
        room.close()
        sender.close()
    assert notices[-1] == "99 more junk commands ignored since the last notice"


def test_throttled_notice_carries_the_count_after_the_interval():
    from thermalcount.mqtt.throttle import Throttled

    said, now = [], [0.0]
    junk = Throttled(said.append, "junk commands", interval=60.0, clock=lambda: now[0])
    for _ in range(5):
        junk("ignored a message")
    now[0] = 61.0
    junk("ignored a message")
    assert said == ["ignored a message", "ignored a message (4 more junk commands ignored since the last notice)"]


@pytest.mark.slow
def test_slow_drip_bridge_is_an_outage_not_a_hang(monkeypatch, caplog):
    """One byte every 0.5 s never trips a socket timeout; the total deadline (here 2 s) does."""
    from thermalcount import config
    from thermalcount.lights import hue, open_lights
    from thermalcount.testing import FakeHueBridge

    monkeypatch.setattr(hue, "REQUEST_DEADLINE", 2.0)
    caplog.set_level(logging.INFO)
    reported = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING and "no answer within 2 s" in record.getMessage():
                reported.set()

    watch = Watch()
    logging.getLogger("thermalcount").addHandler(watch)
    with FakeHueBridge({"1": "Hall"}) as bridge:
        config.save_hue_key(bridge.host, bridge.create_key())
        lights = open_lights("hue", bridge=bridge.host, lights=["Hall"], check_interval=None)
        try:
            lights.set_on(False)
            assert lights.wait_in_sync(HANG_GUARD)
            bridge.drip(0.5)  # an answer of ~100 bytes would take ~50 s
            lights.set_on(True)
            assert reported.wait(HANG_GUARD), "the drip was never reported as an outage"
            assert "no answer within 2 s" in (lights.status().error or "")
            bridge.heal()
            assert lights.wait_in_sync(HANG_GUARD) and bridge.is_on("1")
        finally:
            lights.close(timeout=0)
            logging.getLogger("thermalcount").removeHandler(watch)


def test_drip_request_fails_at_the_deadline_instead_of_succeeding_late(monkeypatch):
    from thermalcount.lights import hue
    from thermalcount.testing import FakeHueBridge

    monkeypatch.setattr(hue, "REQUEST_DEADLINE", 0.5)
    with FakeHueBridge({"1": "Hall"}) as bridge:
        driver = hue.HueDriver(bridge.host, bridge.create_key(), ["Hall"])
        bridge.drip(0.2)  # the whole answer would take ~40 s, each byte well within any socket timeout
        with pytest.raises(TimeoutError) as raised:
            driver.resolve()
        assert driver.describe(raised.value) == "no answer within 0.5 s"
        bridge.heal()
        assert [t.name for t in driver.resolve()] == ["Hall"]
