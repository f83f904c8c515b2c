"""Keep secrets out of everything a user might paste into a bug report or the journal.

Two kinds of secret reach messages: credentials written into a URL
(``mqtt://door:S3cret@host``), and values read from ``credentials.json`` or config.toml
(a Hue key, an MQTT password). The first is found by its shape; the second is remembered
when it is read (:func:`remember_secret`) and masked wherever it shows up later.
Every ``Error:`` line, log line and ``--json`` output passes through :func:`redact`.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"

# scheme://user:password@host or scheme://token@host. The user name is kept (it says which
# account), the password or token goes. The userinfo runs to the LAST "@" before the host, as
# urlsplit reads it: a password "p@ss" must not leave "ss" behind.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/'\"]+)@")

_lock = threading.Lock()
_secrets: set[str] = set()
_longest_first: tuple = ()  # _secrets in the order redact() masks them, kept on each change

# Shorter values would mask ordinary words and numbers in messages ("on", "30").
_MIN_SECRET_LENGTH = 4


def remember_secret(value: Any) -> None:
    """Mask ``value`` in every later :func:`redact` call (a key or password just read)."""
    if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
        global _longest_first
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))  # no partial leftovers


def forget_secrets() -> None:
    """For tests: drop every remembered secret."""
    global _longest_first
    with _lock:
        _secrets.clear()
        _longest_first = ()


def _mask_userinfo(match: re.Match) -> str:
    userinfo = match.group("userinfo")
    user, colon, _password = userinfo.partition(":")
    kept = f"{user}:{MASK}" if colon else MASK
    return f"{match.group('scheme')}{kept}@"


def redact_url(url: str) -> str:
    """``mqtt://door:pw@host:1883`` -> ``mqtt://door:***@host:1883``; other URLs unchanged."""
    return _URL_CREDENTIALS.sub(_mask_userinfo, url)


def redact(text: str) -> str:
    """``text`` with URL credentials and every remembered secret replaced by ``***``."""
    text = redact_url(text)
    for secret in _longest_first:  # a tuple swapped whole: safe to read without the lock
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_values(data: Any) -> Any:
    """A copy of a JSON-like structure with every string passed through :func:`redact`."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {key: redact_values(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_values(value) for value in data]
    return data
