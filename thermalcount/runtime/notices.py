"""The dashboard's recent notices: repeats collapse into one line, warnings outlive chatter.

The dashboard has room for four notice lines. Left as a plain "last four" list, one notice
that repeats (the counter's "exit at frame N with occupancy already 0" came 11 times in 5
simulated minutes) pushed a bridge outage out of sight while it was still going on. So:

* a notice that differs from one already kept only in its numbers (frame, seconds, counts)
  replaces it, moves to the bottom and shows how often it came: ``... (x11)``;
* warnings (outages, recoveries, lights the bridge did not take) are kept before any info
  line; info lines only fill the room the warnings leave.

Only the panel collapses: the plain log (journald) still gets every line, each with its time.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import List, Optional

# Numbers vary between repeats of the same notice; everything else must match.
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class Notice:
    text: str  # the latest wording
    warning: bool
    stamp: float  # unix time of the latest repeat
    count: int = 1
    order: int = 0  # when it last came, for keeping the display in time order
    key: str = ""  # the text with its numbers masked: repeats share it

    def line(self) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(self.stamp))
        return f"{clock} {self.text}" + (f" (x{self.count})" if self.count > 1 else "")


class Notices:
    """At most ``keep`` distinct notices. Written by the loop and logging threads, read by the
    dashboard's refresh thread, hence the lock."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self._items: List[Notice] = []
        self._order = 0
        self._lock = threading.Lock()

    def append(self, message: str, *, warning: bool = False, stamp: Optional[float] = None) -> None:
        key = _NUMBER.sub("#", message)
        now = time.time() if stamp is None else stamp
        with self._lock:
            self._order += 1
            # The list stays in time order without sorting: a repeat moves to the end.
            for index, item in enumerate(self._items):
                if item.warning == warning and item.key == key:
                    del self._items[index]
                    item.text, item.stamp, item.order = message, now, self._order
                    item.count += 1
                    self._items.append(item)
                    break
            else:
                self._items.append(Notice(message, warning, now, order=self._order, key=key))
            if len(self._items) > self.keep:
                # Drop the oldest info line; the oldest warning only when all are warnings.
                oldest_info = next((item for item in self._items if not item.warning), self._items[0])
                self._items.remove(oldest_info)

    def lines(self, room: int = 4) -> List[str]:
        """The lines to show, oldest first: the newest warnings, then the newest info lines."""
        with self._lock:
            newest_first = self._items[::-1]  # kept in time order by append
        chosen = [item for item in newest_first if item.warning][:room]
        chosen += [item for item in newest_first if not item.warning][:room - len(chosen)]
        return [item.line() for item in sorted(chosen, key=lambda item: item.order)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
