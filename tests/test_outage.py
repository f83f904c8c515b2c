"""The one outage policy record and run follow (thermalcount/sensors/outage.py)."""

from __future__ import annotations

from thermalcount.errors import SensorError
from thermalcount.sensors.emulated.bus import FakeClock
from thermalcount.sensors.outage import GLITCH_NOTICE_INTERVAL, RETRY_WAIT, SensorOutages

EIO = SensorError("AMG8833 read failed: I2C input/output error at I2C bus 1 address 0x69; retrying")
GONE = SensorError("the sensor went away")


def test_an_outage_is_said_once_and_its_end_once_with_its_own_failed_reads():
    clock = FakeClock(100.0)
    outages = SensorOutages("counting", clock=clock)
    said = []
    for _ in range(5):
        said.append(outages.failed(GONE))
        clock.advance(0.5)
    # The first failed read of a stream is a glitch said at once; then the outage is not said again.
    assert [n.kind if n else None for n in said] == ["glitch", None, None, None, None]
    assert said[0].message == "sensor problem: the sensor went away; retrying (counting pauses)"
    assert (outages.failed_reads, outages.outages, outages.in_row) == (5, 1, 5)
    end = outages.read_ok()
    assert end.kind == "recovered" and end.message == "sensor recovered after 2.5 s (5 failed reads)"
    assert outages.read_ok() is None and outages.problem is None and outages.since is None


def test_lone_glitches_are_said_at_most_once_a_minute_outages_always():
    clock = FakeClock(100.0)
    outages = SensorOutages("recording", clock=clock)
    kinds = []
    for _ in range(5):  # a glitch every 20 s
        notice = outages.failed(EIO)
        kinds.append(notice.kind if notice else None)
        if notice:
            assert "retrying (recording pauses)" in notice.message  # the driver's own "retrying" is not repeated
            assert notice.message.count("retrying") == 1
        outages.read_ok()
        clock.advance(GLITCH_NOTICE_INTERVAL / 3)
    assert kinds == ["glitch", None, None, "glitch", None]
    # Two in a row inside the quiet minute: an outage, said although a glitch was said just now.
    assert outages.failed(GONE) is None
    assert outages.failed(GONE).kind == "fault"
    assert outages.outages == 1


def test_retries_wait_only_while_reads_keep_failing_and_never_at_max_speed():
    paced, flat_out = SensorOutages("counting", speed=1.0), SensorOutages("counting", speed=None)
    waits = []
    for _ in range(3):
        paced.failed(GONE)
        flat_out.failed(GONE)
        waits.append((paced.retry_wait(), flat_out.retry_wait()))
    assert waits == [(0.0, 0.0), (RETRY_WAIT, 0.0), (RETRY_WAIT, 0.0)]
    paced.read_ok()
    paced.failed(GONE)
    assert paced.retry_wait() == 0.0  # a new run of failures starts with an immediate retry
