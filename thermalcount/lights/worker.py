"""Lights driven from a worker thread, so a slow or dead bridge never stalls the frame loop.

The frame loop only calls :meth:`WorkerLights.set_on`, which stores the desired state under a
lock and returns. One thread owns the driver (the network client) and loops:

* resolve the configured lights/groups to ids (again and again until the bridge answers);
* send the LATEST desired state to every target that is not known to be in it (states set in
  between are skipped: nobody needs the lights to flash on-off-on after the fact);
* space commands to the driver's limits (``Driver.min_interval``: for Hue, ~10/s to
  lights and 1/s to groups);
* on any failure: report it once, forget what the lights are known to be (the bridge may
  have rebooted, the command may or may not have landed), and retry with exponential
  backoff; once everything is sent again, report the recovery once;
* every ``check_interval`` seconds while idle, ask the bridge about one target, so an
  outage shows in the status and the state is re-applied after e.g. a bridge reboot. It does
  NOT fight a manual switch: a light turned off by hand stays off until the desired state
  next changes.

Every command the bridge answers is logged (INFO, one line: on/off, the target, why, "the
bridge took it"); a change the bridge did not take is logged once, after the outage's warning. Outages are
timed from the first failed request, so a hang that phue only gives up on after 10 s is
reported whole.

The driver is a :class:`thermalcount.lights.base.Driver` (see :mod:`thermalcount.lights.hue`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, List, Optional

from thermalcount.errors import LightsError
from thermalcount.lights.base import BridgeRefusal, Driver, Lights, LightStatus, Target

log = logging.getLogger(__name__)


def _category(error: BaseException) -> str:
    if isinstance(error, LightsError):
        return "setup"
    if isinstance(error, BridgeRefusal):
        return "refused"
    return "unreachable"


class WorkerLights(Lights):
    """A :class:`Lights` whose commands are applied by a background thread through ``driver``."""

    def __init__(
        self,
        driver: Driver,
        *,
        backend: str,
        on_status: Optional[Callable[[LightStatus], None]] = None,
        backoff_min: float = 0.5,
        backoff_max: float = 10.0,
        check_interval: Optional[float] = 60.0,
    ):
        super().__init__()
        self.backend = backend
        self._driver = driver
        self._on_status = on_status
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._check_interval = check_interval
        self._changed = threading.Condition(self._lock)
        self._targets: Optional[List[Target]] = None
        self._applied_by_target: Dict[Target, Optional[bool]] = {}
        self._error: Optional[str] = None
        self._error_category: Optional[str] = None
        self._setup_error: Optional[LightsError] = None
        self._outage_since: Optional[float] = None
        self._closing = False
        self._close_deadline = 0.0
        self._first_attempt = threading.Event()
        self._last_sent: Dict[str, float] = {}
        # For the light log: each change of the desired state is one generation; per target,
        # the generation the bridge last took and the last one it was refused, so a re-send
        # after an outage is told apart from a new change, and a refusal is said once.
        self._generation = 0
        self._taken: Dict[Target, int] = {}
        self._failed: Dict[Target, int] = {}
        self._thread = threading.Thread(target=self._run, name="thermalcount-lights", daemon=True)

    # --- the frame loop's side: never blocks on the network --------------------------------

    def start(self) -> "WorkerLights":
        self._thread.start()
        return self

    def set_on(self, on: bool, reason: Optional[str] = None) -> None:
        with self._changed:
            if self._desired != bool(on):
                self._desired = bool(on)
                self._reason = reason
                self._generation += 1
                self._changed.notify_all()

    def status(self) -> LightStatus:
        with self._lock:
            values = set(self._applied_by_target.values())
            applied = values.pop() if len(values) == 1 else None
            return LightStatus(
                backend=self.backend, desired=self._desired, applied=applied,
                error=self._error, outage_since=self._outage_since,
                commands_sent=self._sent, target=self._target_text(self._targets),
            )

    @property
    def target(self) -> str:
        with self._lock:
            return self._target_text(self._targets)

    def _target_text(self, targets) -> str:
        if targets is None:
            return self._driver.description
        return ", ".join(str(target) for target in targets)

    def wait_started(self, timeout: float) -> Optional[LightsError]:
        """Wait up to ``timeout`` s for the first attempt to reach the bridge.

        Returns the set-up error (unknown light, rejected key) if the bridge answered with
        one, else None (resolved, or not answering yet: the worker keeps trying)."""
        self._first_attempt.wait(timeout)
        with self._lock:
            return self._setup_error

    def wait_in_sync(self, timeout: float) -> bool:
        """Wait until every target is known to be in the desired state and no problem is
        pending (an outage's recovery is logged by then). For tests and exits."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._in_sync_locked():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def close(self, timeout: float = 2.0) -> None:
        """Send what is still pending if the bridge answers, then stop; at most ``timeout`` s.

        Lights are left as they are. A thread stuck in a network call (phue waits up to
        10 s) is abandoned: it is a daemon and touches nothing after it returns."""
        with self._changed:
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the worker thread -----------------------------------------------------------------

    def _in_sync_locked(self) -> bool:
        if self._desired is None:
            return True
        if self._targets is None or self._error is not None:
            return False
        return all(value == self._desired for value in self._applied_by_target.values())

    def _pending_locked(self) -> List[Target]:
        if self._desired is None or self._targets is None:
            return []
        return [t for t in self._targets if self._applied_by_target.get(t) != self._desired]

    def _should_stop_locked(self) -> bool:
        if not self._closing:
            return False
        # Closing: finish sending while things work, but never past the deadline.
        return (
            self._error is not None
            or not self._pending_locked()
            or time.monotonic() >= self._close_deadline
        )

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless closing. Returns False when the worker should stop."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while True:
                if self._closing and self._should_stop_locked():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._changed.wait(remaining)

    def _backoff(self, failures: int) -> float:
        return min(self._backoff_max, self._backoff_min * 2 ** max(0, failures - 1))

    def _run(self) -> None:
        failures = 0
        next_check = time.monotonic() + (self._check_interval or 0)
        while True:
            with self._changed:
                if self._should_stop_locked():
                    return
                targets = self._targets
            if targets is None:
                attempt = time.time()
                try:
                    resolved = self._driver.resolve()
                except Exception as error:  # phue raises almost anything
                    self._problem(error, started_at=attempt)
                    self._first_attempt.set()
                    failures += 1
                    if not self._sleep(self._backoff(failures)):
                        return
                    continue
                with self._changed:
                    self._targets = list(resolved)
                    self._applied_by_target = {t: None for t in resolved}
                    self._setup_error = None
                    self._changed.notify_all()
                self._first_attempt.set()
                log.info("lights: %s", self.target)
                failures = 0
                continue

            with self._changed:
                pending = self._pending_locked()
                in_error = self._error is not None
                check_due = bool(self._check_interval) and time.monotonic() >= next_check
                if not pending and not in_error and not check_due:
                    timeout = (next_check - time.monotonic()) if self._check_interval else None
                    self._changed.wait(timeout)
                    continue
            if not pending:
                if in_error and failures == 0:
                    # The last call (a resolve) worked and nothing needs sending.
                    self._recovered()
                    continue
                # Idle health check, or probing a bridge that is still failing.
                next_check = time.monotonic() + (self._check_interval or 0)
                attempt = time.time()
                try:
                    self._driver.check(targets)
                except Exception as error:
                    self._problem(error, started_at=attempt)
                    failures += 1
                    if not self._sleep(self._backoff(failures)):
                        return
                    continue
                failures = 0
                self._recovered()
                continue

            target = pending[0]
            wait = self._last_sent.get(target.kind, -1e9) + self._driver.min_interval[target.kind] - time.monotonic()
            if wait > 0:
                if not self._sleep(wait):
                    return
                continue  # the desired state may have changed meanwhile: re-read it
            with self._lock:
                on, generation, reason = self._desired, self._generation, self._reason
            attempt = time.time()
            try:
                self._driver.send(target, on)
            except Exception as error:
                self._last_sent[target.kind] = time.monotonic()
                self._problem(error, target, started_at=attempt)
                self._log_not_taken(target, on, generation, reason)
                failures += 1
                if not self._sleep(self._backoff(failures)):
                    return
                continue
            # Spacing counts from the answer, so the bridge sees the gap whatever the latency.
            self._last_sent[target.kind] = time.monotonic()
            failures = 0
            with self._changed:
                self._applied_by_target[target] = on
                self._sent += 1
                self._changed.notify_all()
                done = not self._pending_locked()
            self._log_taken(target, on, generation, reason)
            if done:
                self._recovered()
            self._notify()

    # --- the light log: every switch, why, and whether the bridge took it ------------------

    def _why(self, target: Target, generation: int, reason: Optional[str]) -> tuple:
        """(is a re-send of a change the bridge already took, the words for why). Locked."""
        again = self._taken.get(target) == generation
        return again, "re-applied after an outage" if again else (reason or "asked for")

    def _log_taken(self, target: Target, on: bool, generation: int, reason: Optional[str]) -> None:
        with self._lock:
            again, why = self._why(target, generation, reason)
            late = not again and self._failed.get(target) == generation
            self._taken[target] = generation
        if late:
            why += ", sent once the bridge answered again"
        log.info("lights %s: %s; why: %s; the bridge took it", "on" if on else "off", target, why)

    def _log_not_taken(self, target: Target, on: bool, generation: int, reason: Optional[str]) -> None:
        with self._lock:
            again, why = self._why(target, generation, reason)
            first = self._failed.get(target) != generation
            self._failed[target] = generation
        # Said once per change; a re-send of what the lights already were is the outage's
        # business. What went wrong is the outage's warning line (logged just before), so
        # this one stays INFO: one warning per outage, as before.
        if first and not again:
            log.info("lights %s: %s; why: %s; NOT taken yet (the bridge is out, see above); retrying until it is",
                     "on" if on else "off", target, why)

    def _problem(self, error: BaseException, target: Optional[Target] = None, *, started_at: float) -> None:
        """``started_at``: when the failed request was sent. A hang fails only when phue gives up,
        10 s later; the outage is counted from the request, not from the giving up."""
        text = self._driver.describe(error)
        category = _category(error)
        with self._changed:
            started = self._error is None
            changed = category != self._error_category
            self._error, self._error_category = text, category
            if started:
                self._outage_since = started_at
            if isinstance(error, LightsError):
                self._setup_error = error
            # Unreachable: what every light is now is unknown (a command may have landed, the
            # bridge may reboot), so all are re-sent once it answers. A refusal concerns only
            # the target that was refused (e.g. a deleted light): leave the others alone.
            if category == "refused" and target is not None:
                self._applied_by_target[target] = None
            else:
                for each in self._applied_by_target:
                    self._applied_by_target[each] = None
            self._changed.notify_all()
        if started or changed:
            log.warning("%s: %s (retrying in the background; the lights catch up when it answers)",
                        self._driver.description, text)
            self._notify()

    def _recovered(self) -> None:
        with self._lock:
            if self._error is None:
                return
            since = self._outage_since
        # The whole outage: from the first failed request to this first good answer.
        lasted = (f" after {time.time() - since:.0f} s (since the first failed request at "
                  f"{time.strftime('%H:%M:%S', time.localtime(since))})") if since else ""
        log.warning("%s answers again%s; lights re-applied", self._driver.description, lasted)
        # Cleared only after the line is logged: whoever waits for "in sync" sees both.
        with self._changed:
            self._error = self._error_category = self._outage_since = None
            self._changed.notify_all()
        self._notify()

    def _notify(self) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(self.status())
        except Exception:  # a dashboard bug must not kill the lights
            log.exception("lights on_status callback failed")
