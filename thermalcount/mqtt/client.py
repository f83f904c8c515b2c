"""The one module that imports paho-mqtt: a broker link that never blocks its caller.

:class:`MqttLink` owns a paho client and ONE background thread that connects, reconnects
with backoff, reads and writes the socket and feeds the broker from two in-memory stores:

* a bounded FIFO of one-off messages (events): when it is full the oldest is dropped and
  counted, so a broker that is away for hours costs a fixed amount of memory;
* "latest" messages keyed by topic (discovery configs, state, health): only the newest
  value per topic is kept, it is never dropped, and all of them are sent again after every
  (re)connect and on request (Home Assistant restarted).

``publish``/``publish_latest`` only take a lock and append, so a frame loop at 10 FPS never
waits on the network. We run our own loop instead of paho's ``loop_start`` because paho's
thread hides why a connection failed (TLS, DNS, refused) and its ``loop_stop`` can wait
forever for unacknowledged messages when the broker is gone.
"""

from __future__ import annotations

import logging
import os
import select
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from thermalcount.errors import MqttError, UsageError
from thermalcount.support.redaction import redact_url, remember_secret

log = logging.getLogger("thermalcount.mqtt")

#: Seconds between reconnect attempts: the first retry, and the ceiling the backoff doubles up to.
RECONNECT_DELAY = (0.5, 30.0)
USERNAME_ENV = "THERMALCOUNT_MQTT_USERNAME"
PASSWORD_ENV = "THERMALCOUNT_MQTT_PASSWORD"
_CREDENTIAL_HINT = (f"set {USERNAME_ENV} and {PASSWORD_ENV} in the environment, or user = \"...\" "
                    f"under [mqtt] in config.toml and the password in the credentials file")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://HOST[:PORT]`` (default 1883) or ``mqtts://HOST[:PORT]`` (TLS, default 8883)."""
    raw, url = url, redact_url(str(url or ""))  # messages quote the URL without its password
    try:
        parts = urlsplit((raw or "").strip())
        port = parts.port
    except ValueError as error:
        raise MqttError(f"--mqtt {url!r} is not a broker URL ({error}); use mqtt://HOST[:PORT]") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttError(f"--mqtt {url!r} must start with mqtt:// or mqtts:// (TLS); e.g. mqtt://192.168.1.10")
    if parts.password is not None or parts.username is not None:
        raise UsageError(f"--mqtt URL must not contain a user name or password (they would show in ps "
                         f"and logs); remove them from the URL and {_CREDENTIAL_HINT}")
    if not parts.hostname:
        raise MqttError(f"--mqtt {url!r} has no host; use mqtt://HOST[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttError(f"--mqtt {url!r} has a path or query; use just mqtt://HOST[:PORT]")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or (8883 if tls else 1883), tls)


def resolve_credentials(username: Optional[str], password: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """Explicit values win; else ``$THERMALCOUNT_MQTT_USERNAME`` or ``[mqtt] user`` in
    config.toml, and ``$THERMALCOUNT_MQTT_PASSWORD`` or the 0600 credentials file.

    Never from the command line: a password in argv is readable by every local user.
    """
    if username is None and password is None:
        from thermalcount import config

        username = os.environ.get(USERNAME_ENV) or config.load_config().mqtt_user
        password = config.mqtt_password()
    remember_secret(password)  # one given by a library caller is masked in messages too
    if password is not None and username is None:
        raise MqttError(f"an MQTT password is set but no user name; {_CREDENTIAL_HINT}")
    return username, password


def describe_error(error: BaseException) -> str:
    """One readable line for a failed connect, with the fix where we know it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate check failed ({error.verify_message}); give the broker's CA with --mqtt-ca"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error}); is the port a TLS listener?"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the broker running and listening on this port?)"
    if isinstance(error, OSError) and error.__class__.__name__ == "gaierror":
        return f"cannot resolve the host name ({error.strerror or error})"
    if isinstance(error, (TimeoutError, OSError)) and "timed out" in str(error):
        return "connection timed out"
    return f"{type(error).__name__}: {error}"


_AUTH_REFUSALS = ("Not authorized", "Bad user name or password")


def probe_broker(url: str, *, tls_ca: Optional[str] = None, timeout: float = 5.0) -> tuple[str, str]:
    """Connect once with the configured credentials and disconnect (for ``thermalcount doctor``).

    Returns ``(outcome, detail)``: ``("ok", "")``, ``("unreachable", why)`` (no TCP/TLS
    connection) or ``("refused", why)`` (the broker answered but refused us, e.g. a wrong
    password). Bad URLs and credential set-ups raise :class:`MqttError`/:class:`UsageError`
    as ``run`` would.
    """
    broker = parse_broker_url(url)
    client = _new_client(broker, f"thermalcount-doctor-{os.getpid()}", tls_ca=tls_ca, connect_timeout=timeout)
    answer: dict = {}
    client.on_connect = lambda _c, _u, _f, reason_code, _p: answer.setdefault("reason", reason_code)
    try:
        client.connect(broker.host, broker.port, keepalive=10)
    except (OSError, ValueError) as error:
        return "unreachable", describe_error(error)
    try:
        deadline = time.monotonic() + timeout
        while "reason" not in answer and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS and "reason" not in answer:
                return "unreachable", "the broker closed the connection before answering"
        reason = answer.get("reason")
        if reason is None:
            return "unreachable", f"no answer to CONNECT within {timeout:g} s"
        if reason.is_failure:
            hint = f"; {_CREDENTIAL_HINT}" if str(reason) in _AUTH_REFUSALS else ""
            return "refused", f"broker refused the connection: {reason}{hint}"
        return "ok", ""
    finally:
        try:
            client.disconnect()
            client.loop(timeout=0.1)
        except Exception:  # the socket may already be gone; nothing to clean up then
            pass


def _new_client(broker: BrokerAddress, client_id: str, *, tls_ca: Optional[str] = None,
                username: Optional[str] = None, password: Optional[str] = None,
                connect_timeout: float = 5.0) -> "paho.Client":
    """A paho client set up as every thermalcount connection is: clean session, the
    credentials from the environment or config (never the URL), TLS for mqtts://."""
    if tls_ca and not broker.tls:
        raise UsageError("--mqtt-ca needs an mqtts:// broker URL (TLS)")
    username, password = resolve_credentials(username, password)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect_timeout = connect_timeout
    if username is not None:
        client.username_pw_set(username, password)
    if broker.tls:
        _configure_tls(client, tls_ca)
    return client


def _configure_tls(client, tls_ca: Optional[str]) -> None:
    if tls_ca is not None:
        try:
            with open(tls_ca, "rb"):
                pass
        except OSError as error:
            raise MqttError(f"cannot read the CA file {tls_ca}: {error.strerror or error}") from None
    try:
        context = ssl.create_default_context(cafile=tls_ca)
    except ssl.SSLError as error:
        raise MqttError(f"{tls_ca} is not a PEM CA certificate ({error.reason or error})") from None
    client.tls_set_context(context)


class MqttLink:
    """A paho client run by one background thread. Thread-safe; ``publish*`` never block.

    ``will``/``birth`` are ``(topic, payload)``: the birth is published retained right
    after every connect, the will is the broker's last will (retained) and is also
    published by :meth:`close`, since a clean disconnect does not fire the will.
    ``on_message(topic, payload, retained)`` runs in the link's thread: keep it short.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        will: Optional[tuple[str, str]] = None,
        birth: Optional[tuple[str, str]] = None,
        subscriptions: tuple[str, ...] = (),
        on_message: Optional[Callable[[str, bytes, bool], None]] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        tls_ca: Optional[str] = None,
        max_queue: int = 1000,
        keepalive: int = 20,
        reconnect_delay: tuple[float, float] = RECONNECT_DELAY,
        reporter: Optional[Callable[[str], None]] = None,
    ):
        self.broker = parse_broker_url(url)
        if max_queue < 1:
            raise UsageError(f"max_queue must be at least 1, not {max_queue}")
        client = _new_client(self.broker, client_id, tls_ca=tls_ca, username=username, password=password)
        self._will, self._birth = will, birth
        self._subscriptions = tuple(subscriptions)
        self._on_message = on_message
        self._keepalive = int(keepalive)
        self._min_delay, self._max_delay = reconnect_delay
        self._report = reporter or log.warning
        self._max_queue = max_queue

        self._lock = threading.Lock()
        self._queue: deque[tuple[str, bytes, int, bool]] = deque()
        self._latest: dict[str, tuple[bytes, int, bool]] = {}
        self._dirty: set[str] = set()
        self._dropped = 0
        self._sent = 0
        self._connected = False
        self._socket_open = False
        self._announce = False
        self._refusal: Optional[str] = None
        self._last_error: Optional[str] = None
        self._outage_since: Optional[float] = None
        self._dropped_at_outage = 0
        self._ever_connected = False
        self._closing = threading.Event()
        self._closing_deadline = 0.0
        self._thread: Optional[threading.Thread] = None

        client.max_inflight_messages_set(100)
        # Bounds what paho holds for QoS 1 while unacknowledged; beyond that we keep it.
        client.max_queued_messages_set(max_queue)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client

    # -- called from any thread ------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.broker}", daemon=True)
        self._thread.start()

    def publish(self, topic: str, payload, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a one-off message; if the queue is full the oldest message is dropped."""
        item = (topic, _as_bytes(payload), qos, retain)
        with self._lock:
            if len(self._queue) >= self._max_queue:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(item)

    def publish_latest(self, topic: str, payload, *, qos: int = 1, retain: bool = True) -> None:
        """Set the current value of a topic; sent soon, and again after every reconnect."""
        with self._lock:
            self._latest[topic] = (_as_bytes(payload), qos, retain)
            self._dirty.add(topic)

    def republish_all(self) -> None:
        """Send every latest value again (Home Assistant restarted and lost its state)."""
        with self._lock:
            self._announce = self._announce or self._connected
            self._dirty.update(self._latest)

    @property
    def status(self) -> dict:
        with self._lock:
            return {
                "connected": self._connected,
                "queued": len(self._queue) + len(self._dirty),
                "dropped": self._dropped,
                "sent": self._sent,
                "last_error": self._last_error,
                "broker": str(self.broker),
            }

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued (within ``timeout``), publish the will payload, disconnect."""
        thread = self._thread
        self._closing_deadline = time.monotonic() + timeout
        self._closing.set()
        if thread is not None:
            thread.join(timeout + 1.0)

    # -- the link's own thread -----------------------------------------------------------------
    def _run(self) -> None:
        delay = self._min_delay
        client = self._client
        while not self._closing.is_set():
            if not self._socket_open:
                try:
                    client.connect(self.broker.host, self.broker.port, keepalive=self._keepalive)
                    self._socket_open = True
                except (OSError, ValueError) as error:
                    self._outage(describe_error(error))
                    self._closing.wait(delay)
                    delay = min(delay * 2, self._max_delay)
                    continue
            rc = client.loop(timeout=0.05)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._read_waiting()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._socket_open = False
                with self._lock:
                    self._connected = False
                self._outage(self._refusal or f"connection lost ({paho.error_string(rc)})")
                self._refusal = None
                self._closing.wait(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            if self._connected:
                delay = self._min_delay
                self._pump()
        self._shutdown()

    def _read_waiting(self, limit: int = 500) -> MQTTErrorCode:
        """Read every packet already waiting: ``loop()`` reads one per call, too slow for a burst."""
        client = self._client
        for _ in range(limit):
            sock = client.socket()
            if sock is None:
                break
            pending = sock.pending() if hasattr(sock, "pending") else 0
            if not pending and not select.select([sock], [], [], 0)[0]:
                break
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            hint = f"; {_CREDENTIAL_HINT}" if str(reason_code) in _AUTH_REFUSALS else ""
            self._refusal = f"broker refused the connection: {reason_code}{hint}"
            return
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        with self._lock:
            self._connected = True
            self._announce = True
            self._dirty.update(self._latest)
        self._ever_connected = True
        if self._outage_since is not None:
            seconds = time.monotonic() - self._outage_since
            dropped = self._dropped - self._dropped_at_outage
            self._report(f"MQTT broker {self.broker} connected again after {seconds:.0f} s"
                         + (f"; {dropped} queued messages were dropped meanwhile" if dropped else ""))
            self._outage_since = None
        self._last_error = None

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self._connected = False

    def _handle_message(self, client, userdata, message) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(message.topic, message.payload, bool(message.retain))
        except Exception as error:  # a bad handler must not kill the link's thread
            log.exception("MQTT message handler failed on %s: %s", message.topic, error)

    def _outage(self, reason: str) -> None:
        self._last_error = reason
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._dropped_at_outage = self._dropped
            verb = "lost" if self._ever_connected else "unreachable"
            self._report(f"MQTT broker {self.broker} {verb}: {reason}; counting goes on, keeping up to "
                         f"{self._max_queue} messages and retrying in the background")

    def _pump(self, limit: int = 500) -> None:
        """Hand queued messages to paho: the birth, latest values, then one-off messages."""
        client = self._client
        with self._lock:
            announce, self._announce = self._announce, False
            latest = [(topic, *self._latest[topic]) for topic in self._latest if topic in self._dirty]
            self._dirty.clear()
            batch = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
        if announce and self._birth is not None:
            client.publish(self._birth[0], self._birth[1], qos=1, retain=True)
        for position, (topic, payload, qos, retain) in enumerate(latest):
            if not self._hand_over(topic, payload, qos, retain):
                with self._lock:
                    self._dirty.update(t for t, *_ in latest[position:])
                    self._queue.extendleft(reversed(batch))
                return
        for position, (topic, payload, qos, retain) in enumerate(batch):
            if not self._hand_over(topic, payload, qos, retain):
                with self._lock:
                    self._queue.extendleft(reversed(batch[position:]))
                return

    def _hand_over(self, topic, payload, qos, retain) -> bool:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        # A QoS 1 message that paho accepted while the socket died is kept and re-sent by paho.
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE or (qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN):
            return False
        with self._lock:
            self._sent += 1
        return True

    def _shutdown(self) -> None:
        client = self._client
        deadline = self._closing_deadline
        if self._connected:
            while time.monotonic() < deadline and self._connected and self.status["queued"]:
                self._pump()
                client.loop(timeout=0.01)
            if self._will is not None:
                info = client.publish(self._will[0], self._will[1], qos=1, retain=True)
                while time.monotonic() < deadline and self._connected and not info.is_published():
                    client.loop(timeout=0.02)
        if self._socket_open:
            client.disconnect()
            client.loop(timeout=0.01)
        self._socket_open = False
        with self._lock:
            self._connected = False


def _as_bytes(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return str(payload).encode("utf-8")
