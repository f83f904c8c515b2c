"""Test helpers: a real mosquitto broker on a free loopback port, and an observing client.

The observer uses paho directly (not thermalcount's link) so the tests check what is on
the wire with an independent client.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mosquitto:
    """Debian's mosquitto with a temp config; ``stop()``/``start()`` keep the same port."""

    def __init__(self, *, tls: Optional[dict] = None, extra: tuple = (), persistence: bool = False):
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
        self.directory = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        persist = ["persistence true", f"persistence_location {self.directory}/"] if persistence else ["persistence false"]
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", *persist,
                 "log_dest stderr", "log_type error", "log_type warning"]
        lines += list(extra)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, mosquitto drops to user "mosquitto", which cannot read the
            # test's temp files (certificates, password file).
            lines.append("user root")
        if tls:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {tls['ca']}",
                      f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        self.config = self.directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.directory / "log.txt", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.directory / 'log.txt').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start accepting connections within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return self.payload.decode()


class Observer:
    """Subscribes to topics and records every message; ``wait_for`` polls the record."""

    def __init__(self, port: int, *topics: str, client_id: str = "observer", persistent: bool = False):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        # A persistent session (fixed id, clean_session False) has the broker keep QoS 1
        # messages for it while it is disconnected: no race with a fast publisher.
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id if persistent else f"{client_id}-{free_port()}",
                                  clean_session=not persistent)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.topics = topics
        self.client.on_connect = lambda client, *args: client.subscribe([(t, 1) for t in topics])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(5):
            raise RuntimeError("observer could not subscribe")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain), message.qos))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Optional[Received]:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(self, predicate, timeout: float = 5.0, what: str = "a condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.01)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; saw "
                             f"{[(m.topic, m.payload[:60]) for m in self.messages[-10:]]}")

    def wait_payload(self, topic: str, payload: str, timeout: float = 5.0) -> Received:
        def found():
            for message in reversed(self.on(topic)):
                if message.text == payload:
                    return message
            return None
        return self.wait_for(found, timeout, f"{payload!r} on {topic}")

    def publish(self, topic: str, payload: str, *, retain: bool = False, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()  # first, so loop_stop does not sit out its 1 s select
        self.client.loop_stop()


@pytest.fixture
def observers():
    """``observers(port, *topics)`` -> an Observer, closed after the test."""
    opened = []

    def make(port, *topics):
        observer = Observer(port, *topics)
        opened.append(observer)
        return observer

    yield make
    for observer in opened:
        observer.close()


@pytest.fixture
def broker():
    instance = Mosquitto().start()
    yield instance
    instance.close()


def make_self_signed(directory: Path) -> Optional[dict]:
    """A CA and a server certificate for 127.0.0.1 via the openssl CLI (None if missing)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
                    "-out", str(ca), "-days", "2", "-subj", "/CN=thermalcount test CA"], **quiet)
    subprocess.run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", "/CN=127.0.0.1"], **quiet)
    subprocess.run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                    "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)], **quiet)
    return {"ca": str(ca), "cert": str(cert), "key": str(key)}
