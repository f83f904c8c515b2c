"""The ``run --events-out`` log: one JSON line per event, that never ends ``run``.

The log is a side output. A full disk, a pulled USB stick, ``/dev/full`` or a FIFO whose
reader went away must not stop the counting or the lights, so a failed write is said once,
the events wait in a bounded buffer (:data:`MAX_HELD`, oldest dropped first) and are
written when the log works again, which is said once too.

The log is read line by line by other programs, so a line is written whole or not at all:

* before appending to an existing regular file, a torn last line (a crash or a full disk
  mid-write, from an older version or another program) is completed if it is a whole JSON
  object that only lacks its newline, and dropped otherwise;
* a write that stops part-way into a regular file is cut back to the last whole line
  (``ftruncate``), and the line is retried whole later;
* into a pipe, which cannot be cut back, the rest of the line is written first next time,
  so the reader still gets whole lines.

The file is opened with ``O_NONBLOCK``: a FIFO without a reader is refused at once instead
of hanging ``run`` before its first frame, and a full pipe is a failed write, not a stall.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
from collections import deque
from typing import Optional

from thermalcount.errors import OutputPathError

log = logging.getLogger("thermalcount.events")

#: Events kept in memory while the log cannot be written (about 2 MB at most).
MAX_HELD = 10_000
#: Wall seconds between retries while nothing new arrives.
RETRY_INTERVAL = 5.0
#: How far back from the end a torn last line is looked for.
_TAIL_SCAN = 1 << 20


class EventLog:
    """Appends events to ``path``; :meth:`open` refuses a path that cannot be opened at all."""

    def __init__(self, path: str, fd: int, *, seekable: bool, max_held: int = MAX_HELD,
                 retry_interval: float = RETRY_INTERVAL, clock=time.monotonic):
        self.path = path
        self._fd: Optional[int] = fd
        self._seekable = seekable
        self._held: deque = deque()
        self._max_held = max_held
        self._written = 0  # bytes of the first held line already in a pipe
        self._retry_interval = retry_interval
        self._clock = clock
        self._next_retry = 0.0
        self.failing: Optional[str] = None  # the reason while writes fail
        self.dropped = 0  # events dropped because the buffer was full
        self.written = 0  # events written

    @classmethod
    def open(cls, path: str, **options) -> "EventLog":
        """Open for appending, repairing a torn last line. One-line :class:`OutputPathError` if it cannot."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as error:
            if error.errno == errno.ENXIO:  # O_NONBLOCK on a FIFO nobody reads
                raise OutputPathError(
                    f"the event log {path} is a FIFO with no reader; start the program that reads it "
                    "first, or give a regular file"
                ) from None
            raise OutputPathError(
                f"cannot write the event log {path}: {error.strerror or error}; choose a writable path"
            ) from None
        try:
            seekable = stat.S_ISREG(os.fstat(fd).st_mode)
            if seekable:
                _repair_torn_tail(path, fd)
        except NotAnEventLog as error:
            os.close(fd)
            raise OutputPathError(
                f"the event log {path} exists and is not a JSON-lines event log ({error}); it was left "
                "as it is: give a new file or an earlier --events-out log"
            ) from None
        except OSError as error:
            os.close(fd)
            raise OutputPathError(
                f"cannot write the event log {path}: {error.strerror or error}; choose a writable path"
            ) from None
        return cls(path, fd, seekable=seekable, **options)

    # -- the loop's side -------------------------------------------------------------------
    def append(self, record: dict) -> None:
        """Queue one event and try to write everything queued. Never raises."""
        if len(self._held) >= self._max_held:
            # The oldest first: the newest events say where the count stands now. A line half
            # in a pipe must still be finished, so then the one after it goes.
            if self._written and len(self._held) > 1:
                del self._held[1]
            else:
                self._held.popleft()
                self._written = 0
            self.dropped += 1
        self._held.append((json.dumps(record) + "\n").encode("utf-8"))
        self._drain()

    @property
    def pending(self) -> bool:
        return bool(self._held)

    def retry(self) -> None:
        """Called every frame while events wait: tries again every ``retry_interval`` seconds."""
        if self._held and self._clock() >= self._next_retry:
            self._drain()

    def close(self) -> None:
        """A last try, then close. Says how many events never reached the log."""
        if self._fd is None:
            return
        self._drain()
        if self._held:
            log.warning("event log %s: %d event(s) could not be written before stopping", self.path,
                        len(self._held))
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._fd = None

    # -- writing whole lines ---------------------------------------------------------------
    def _drain(self) -> None:
        if self._fd is None:
            return
        while self._held:
            line = self._held[0]
            start = None
            try:
                if self._seekable:
                    start = os.lseek(self._fd, 0, os.SEEK_END)
                done = self._written
                while done < len(line):
                    count = os.write(self._fd, line[done:])
                    if count <= 0:
                        raise OSError(errno.EIO, "nothing was written")
                    done += count
                    if not self._seekable:
                        self._written = done
            except OSError as error:
                if self._seekable and start is not None:
                    self._cut_back(start)
                self._failed(error)
                return
            self._held.popleft()
            self._written = 0
            self.written += 1
        if self.failing is not None:
            log.warning("event log %s works again (%d event(s) written in all%s)", self.path, self.written,
                        f"; {self.dropped} dropped so far, the oldest, when more than {self._max_held} waited"
                        if self.dropped else "")
            self.failing = None

    def _cut_back(self, size: int) -> None:
        """A line that stopped part-way is cut off, so the file ends in a whole line."""
        try:
            if os.fstat(self._fd).st_size > size:
                os.ftruncate(self._fd, size)
        except OSError:
            pass  # the next open repairs the torn line

    def _failed(self, error: OSError) -> None:
        self._next_retry = self._clock() + self._retry_interval
        if self.failing is None:
            reason = error.strerror or str(error)
            if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                reason = "the reader is not keeping up"
            elif error.errno == errno.EPIPE:
                reason = "the reader went away"
            self.failing = reason
            log.warning("event log %s cannot be written (%s); counting goes on, up to %d events are "
                        "kept and written when it works again", self.path, reason, self._max_held)


class NotAnEventLog(ValueError):
    """An existing file whose end is not ours to repair (a recording given by mistake...)."""


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return False


def _repair_torn_tail(path: str, fd: int) -> None:
    """Make a regular file end in a whole line: complete a whole JSON object, drop a torn one.

    Only a file that looks like an event log is touched or appended to: its last whole line
    is a JSON object (or there is none), and a torn end is the start of one. Anything else
    (a recording or a document named by mistake) raises :class:`NotAnEventLog`, unchanged.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as handle:
        begin = max(0, size - _TAIL_SCAN)
        handle.seek(begin)
        tail = handle.read(size - begin)
    torn = not tail.endswith(b"\n")
    body = tail if torn else tail[:-1]
    cut = body.rfind(b"\n")  # the end of the last line kept as it is
    if cut < 0 and begin > 0:
        raise NotAnEventLog("its last line is over 1 MB long")
    last = body[cut + 1:]
    whole = last if not torn else body[body.rfind(b"\n", 0, max(cut, 0)) + 1:max(cut, 0)]
    if whole.strip() and not _is_json_object(whole):
        raise NotAnEventLog("its last line is not a JSON event")
    if not torn:
        return
    if not last.lstrip().startswith(b"{"):
        raise NotAnEventLog("it ends in a line that is not a JSON event")
    if _is_json_object(last):
        os.write(fd, b"\n")
        log.warning("event log %s ended without a newline; completed its last line", path)
    else:
        os.ftruncate(fd, begin + cut + 1)
        log.warning("event log %s ended in a torn line (%d bytes, from a crash or a full disk); dropped it",
                    path, len(last))


class StreamEvents:
    """A text stream given to :class:`LiveLoop` directly (tests, embedding): a line per event."""

    pending = False

    def __init__(self, stream):
        self.stream = stream

    def append(self, record: dict) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()

    def retry(self) -> None:
        pass
