"""One outage policy for every loop that reads a sensor (``record`` and ``run``).

A failed read (:class:`~thermalcount.errors.SensorError`) never ends a loop. The policy:

* **retry**: the first failed read is retried at once (a glitch costs nothing); while reads
  keep failing, each retry waits :data:`RETRY_WAIT` on top of the sensor's own frame wait
  (no wait at ``--speed max``, where the emulated part runs on a virtual clock);
* **reopen**: never here: the AMG8833 driver re-opens the bus and re-runs its start-up
  itself (after 3 flaky failures in a row, or at once when the part or bus is gone);
* **say**: two or more failed reads in a row are an *outage*, said once when it starts and
  once when it ends; a lone failed read (a glitch) is counted, and said at most once every
  :data:`GLITCH_NOTICE_INTERVAL` seconds so a noisy bus cannot flood the journal. Every
  problem said gets its end line.

Each loop keeps one :class:`SensorOutages` per sensor and calls :meth:`~SensorOutages.failed`
for a failed read and :meth:`~SensorOutages.read_ok` for a good one; both return the line to
say, or None.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

#: Seconds between retries while reads keep failing (after the sensor's own frame wait).
RETRY_WAIT = 0.05
#: Lone failed reads are said at most this often (wall seconds); outages always are.
GLITCH_NOTICE_INTERVAL = 60.0


@dataclass(frozen=True)
class Notice:
    kind: str  # "fault" (an outage starts), "glitch" (a lone failed read), "recovered"
    message: str


class SensorOutages:
    """Failed and good reads of one sensor under the policy above.

    ``activity`` is what pauses while the sensor is away ("counting", "recording"); it is
    named in the line that says so. ``speed`` None (``--speed max``) retries without waiting.
    """

    def __init__(self, activity: str, *, speed: Optional[float] = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.activity = activity
        self._retry_wait = 0.0 if speed is None else RETRY_WAIT
        self._clock = clock
        self.failed_reads = 0  # in all
        self.outages = 0  # runs of two or more failed reads in a row
        self.in_row = 0  # failed reads since the last good one
        self.since: Optional[float] = None  # when the current run of failed reads began
        self.problem: Optional[str] = None  # the problem said and not yet ended
        self._last_glitch_notice = -GLITCH_NOTICE_INTERVAL

    def failed(self, error) -> Optional[Notice]:
        """Count one failed read; the notice to give now, or None (counted only)."""
        now = self._clock()
        self.failed_reads += 1
        self.in_row += 1
        if self.since is None:
            self.since = now
        if self.in_row == 2:
            self.outages += 1
        if self.problem is not None:
            return None  # said once until it ends
        outage = self.in_row >= 2
        if not outage and now - self._last_glitch_notice < GLITCH_NOTICE_INTERVAL:
            return None
        if not outage:
            self._last_glitch_notice = now
        self.problem = " ".join(str(error).split())
        retrying = "" if "retry" in self.problem.lower() else "; retrying"
        return Notice("fault" if outage else "glitch",
                      f"sensor problem: {self.problem}{retrying} ({self.activity} pauses)")

    def retry_wait(self) -> float:
        """Seconds to wait before the next read: none after a lone failed read."""
        return self._retry_wait if self.in_row >= 2 else 0.0

    def read_ok(self) -> Optional[Notice]:
        """A good read: the end of a problem that was said, or None."""
        if self.since is None:
            return None
        notice = None
        if self.problem is not None:
            notice = Notice("recovered", f"sensor recovered after {self._clock() - self.since:.1f} s "
                                         f"({self.in_row} failed read{'s' if self.in_row != 1 else ''})")
        self.since, self.in_row, self.problem = None, 0, None
        return notice
