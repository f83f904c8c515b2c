"""The user's config directory: settings in ``config.toml``, secrets in ``credentials.json``.

Where: ``$THERMALCOUNT_CONFIG_DIR`` if set, else the platform's app dir
(``~/.config/thermalcount`` on Linux). Two files, on purpose:

* ``config.toml`` is written by hand and may be shared: bridge address, default lights or
  group (``[hue]``), off-delay (``[lights]``), MQTT URL and user (``[mqtt]``). It must never hold a secret.
* ``credentials.json`` holds the Hue key(s) and the MQTT password. It is created atomically
  with mode 0600 (the secret never exists in a file other users can read, not even for a
  moment) and its permissions are tightened if someone loosened them.

Secrets come from the environment (``THERMALCOUNT_HUE_KEY``, ``THERMALCOUNT_MQTT_PASSWORD``)
or from that file, never from command-line arguments, which other users can read in
``ps``. Nothing here prints or logs a secret.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from thermalcount.errors import ConfigError
from thermalcount.support.redaction import remember_secret

log = logging.getLogger(__name__)

CONFIG_DIR_ENV = "THERMALCOUNT_CONFIG_DIR"
HUE_KEY_ENV = "THERMALCOUNT_HUE_KEY"
MQTT_PASSWORD_ENV = "THERMALCOUNT_MQTT_PASSWORD"
CONFIG_FILE = "config.toml"
CREDENTIALS_FILE = "credentials.json"

# Secrets have no business in the shareable file; catch the obvious mistake early.
_SECRET_NAMES = {"key", "password", "username", "hue_key", "token"}

# Every key config.toml understands, by table. Anything else is a typo or a setting from
# another version: it is ignored, but said (once per process), because a silently ignored
# `of_delay = 300` looks exactly like a setting that works.
KNOWN_KEYS = {
    "hue": ("bridge", "lights", "group"),
    "lights": ("off_delay",),
    "mqtt": ("url", "user"),
}
# Keys that moved: still read from the old place (a user's file keeps working), with a
# warning saying where they go now.
MOVED_KEYS = {("hue", "off_delay"): ("lights", "off_delay")}
_warned: set = set()


@dataclass
class Config:
    """The settings in ``config.toml`` (all optional). ``raw`` keeps every table as read."""

    path: Path
    hue_bridge: Optional[str] = None
    hue_lights: tuple = ()
    hue_group: Optional[str] = None
    off_delay: Optional[float] = None
    mqtt_url: Optional[str] = None
    mqtt_user: Optional[str] = None
    raw: dict = field(default_factory=dict)
    #: Keys (and tables) the file has that nothing reads, as ``UnknownKey`` (for ``doctor``).
    unknown: tuple = ()
    #: One line per key still read from where it used to be: "[hue] off_delay is deprecated; ...".
    moved: tuple = ()


@dataclass(frozen=True)
class UnknownKey:
    """A key in config.toml that nothing reads. ``table`` is None for a top-level name."""

    table: Optional[str]
    key: Optional[str]  # None: the whole table is unknown
    suggestion: Optional[str] = None  # "[lights] off_delay", from difflib

    @property
    def name(self) -> str:
        if self.key is None:
            return f"[{self.table}]"
        return self.key if self.table is None else f"[{self.table}] {self.key}"

    @property
    def message(self) -> str:
        """One line: what is ignored, the nearest valid key, and the valid keys."""
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else ""
        if self.key is None:
            valid = ", ".join(f"[{name}]" for name in KNOWN_KEYS)
            return f"unknown table {self.name} ignored{hint} (valid tables: {valid})"
        if self.table in KNOWN_KEYS:
            valid = f"valid keys in [{self.table}]: {', '.join(KNOWN_KEYS[self.table])}"
        else:
            valid = "settings belong in " + " or ".join(f"[{name}]" for name in KNOWN_KEYS)
        secret = ""
        if any(part in self.key.lower() for part in ("pass", "pw", "secret", "token")):
            # Never echo the value: it may be the very password that does not belong here.
            secret = (f"; passwords go in {MQTT_PASSWORD_ENV} or the credentials file, "
                      "never in config.toml")
        return f"unknown key {self.name} ignored{hint} ({valid}){secret}"


def find_unknown_keys(raw: dict) -> tuple:
    """Every key of a parsed config.toml that nothing reads, each with a "did you mean"."""
    everywhere = {f"[{table}] {key}": key for table, keys in KNOWN_KEYS.items() for key in keys}

    def anywhere(key: str) -> Optional[str]:
        close = difflib.get_close_matches(key.lower(), list(everywhere.values()), n=1, cutoff=0.6)
        return next((full for full, known in everywhere.items() if close and known == close[0]), None)

    found = []
    for name, value in raw.items():
        if name in KNOWN_KEYS and isinstance(value, dict):
            valid = KNOWN_KEYS[name]
            for key in value:
                if key not in valid and (name, key) not in MOVED_KEYS:
                    # The nearest key of this table, else of any table: `[hue] of_delay` is
                    # the light policy's `[lights] off_delay`.
                    close = difflib.get_close_matches(key.lower(), valid, n=1, cutoff=0.6)
                    found.append(UnknownKey(name, key, f"[{name}] {close[0]}" if close else anywhere(key)))
        elif name in KNOWN_KEYS:
            continue  # not a table: load_config refuses it in one line
        elif isinstance(value, dict):
            close = difflib.get_close_matches(name.lower(), list(KNOWN_KEYS), n=1, cutoff=0.6)
            found.append(UnknownKey(name, None, f"[{close[0]}]" if close else None))
        else:
            # A setting outside any table: `off_delay = 60` above [lights] is a common slip.
            found.append(UnknownKey(None, name, anywhere(name)))
    return tuple(found)


def config_dir() -> Path:
    """The config directory (not created)."""
    configured = os.environ.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import click  # only here: keeps this module importable without the CLI stack

    return Path(click.get_app_dir("thermalcount"))


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS_FILE


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - exercised on 3.9/3.10 only
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ConfigError(
                f"{path}: reading config.toml needs Python 3.11 or the tomli package; "
                "run pip install tomli"
            ) from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(
            f"cannot read the config file {path} ({error.strerror or error}); "
            "fix its permissions or delete it"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        detail = " ".join(str(error).split())
        raise ConfigError(
            f"the config file {path} is not valid TOML ({detail}); fix it or delete it"
        ) from None


def load_config(*, warn: bool = True) -> Config:
    """Read ``config.toml``; a missing file is an empty config. Raises :class:`ConfigError`.

    Unknown keys are logged once per process unless ``warn`` is False (``doctor`` shows
    them in its table instead)."""
    path = config_path()
    if not path.exists():
        return Config(path=path)
    raw = _load_toml(path)

    def table(name: str) -> dict:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{name}] must be a table; fix the config file")
        for key in value:
            if key.lower() in _SECRET_NAMES:
                raise ConfigError(
                    f"{path}: [{name}] {key} is a secret and does not belong in config.toml; "
                    f"remove it and use {HUE_KEY_ENV if name == 'hue' else MQTT_PASSWORD_ENV} "
                    "or the credentials file"
                )
        return value

    def text(section: dict, name: str, key: str) -> Optional[str]:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"{path}: [{name}] {key} must be a string; fix the config file")
        return str(value)

    hue, lights_table, mqtt = table("hue"), table("lights"), table("mqtt")
    lights = hue.get("lights", ())
    if isinstance(lights, (str, int)) and not isinstance(lights, bool):
        lights = [lights]
    if not isinstance(lights, (list, tuple)) or not all(
        isinstance(item, (str, int)) and not isinstance(item, bool) for item in lights
    ):
        raise ConfigError(
            f'{path}: [hue] lights must be a list of names or ids, e.g. lights = ["Hall", "3"]'
        )
    def seconds(section: dict, name: str, key: str) -> Optional[float]:
        value = section.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0
        ):
            # TOML has nan and inf; neither is a delay (nan would make every comparison false).
            raise ConfigError(f"{path}: [{name}] {key} must be a finite number of seconds >= 0, "
                              f"not {value!r}; fix the config file")
        return None if value is None else float(value)

    off_delay = seconds(lights_table, "lights", "off_delay")
    if off_delay is None:
        off_delay = seconds(hue, "hue", "off_delay")
    sections = {"hue": hue, "lights": lights_table}
    moved = {f"[{old[0]}] {old[1]}": (
        f"[{old[0]}] {old[1]} is deprecated; move it to [{new[0]}] {new[1]} "
        + ("(which is set and wins)" if new[1] in sections[new[0]] else "(still read for now)")
    ) for old, new in MOVED_KEYS.items() if old[1] in sections[old[0]]}
    unknown = find_unknown_keys(raw)
    warnings = list(moved.items()) + [(item.name, item.message) for item in unknown]
    for name, message in warnings if warn else ():
        if (str(path), name) not in _warned:
            _warned.add((str(path), name))
            log.warning("%s: %s", path, message)
    return Config(
        path=path,
        hue_bridge=text(hue, "hue", "bridge"),
        hue_lights=tuple(str(item) for item in lights),
        hue_group=text(hue, "hue", "group"),
        off_delay=off_delay,
        mqtt_url=text(mqtt, "mqtt", "url"),
        mqtt_user=text(mqtt, "mqtt", "user"),
        raw=raw,
        unknown=unknown,
        moved=tuple(moved.values()),
    )


# --- credentials -------------------------------------------------------------------------


def _read_credentials() -> dict:
    path = credentials_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read the credentials file {path} ({error.strerror}); fix its permissions") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Loosened by hand or by a copy: tighten rather than refuse, and say so once.
        try:
            os.chmod(path, 0o600)
            log.warning("tightened permissions of %s to 0600 (it was readable by other users)", path)
        except OSError:
            raise ConfigError(f"{path} is readable by other users; run chmod 600 {path}") from None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read the credentials file {path} ({error.strerror}); fix its permissions") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(
            f"the credentials file {path} is not valid JSON; delete it and pair again "
            "(thermalcount hue pair --bridge HOST)"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"the credentials file {path} is malformed; delete it and pair again")
    return data


def _write_credentials(data: dict) -> Path:
    """Write atomically: a 0600 temp file in the same directory, fsync, rename over."""
    path = credentials_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
    except OSError as error:
        raise ConfigError(
            f"cannot write the credentials file {path} ({error.strerror or error}); "
            f"check that {path.parent} is writable or set {CONFIG_DIR_ENV}"
        ) from None
    return path


def save_hue_key(host: str, key: str) -> Path:
    """Store the key for bridge ``host`` (and make it the default bridge). Returns the file."""
    data = _read_credentials()
    hue = data.get("hue") if isinstance(data.get("hue"), dict) else {}
    bridges = hue.get("bridges") if isinstance(hue.get("bridges"), dict) else {}
    bridges[host] = {"key": key}
    data["hue"] = {"bridges": bridges, "default": host}
    return _write_credentials(data)


def hue_key(host: str) -> Optional[str]:
    """The key for ``host``: ``$THERMALCOUNT_HUE_KEY`` first, else the credentials file."""
    from_env = os.environ.get(HUE_KEY_ENV)
    if from_env:
        remember_secret(from_env.strip())  # masked in every later message and log line
        return from_env.strip()
    hue = _read_credentials().get("hue")
    bridges = hue.get("bridges") if isinstance(hue, dict) else None
    entry = bridges.get(host) if isinstance(bridges, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry["key"]:
        remember_secret(entry["key"])
        return entry["key"]
    return None


def paired_bridge() -> Optional[str]:
    """The bridge most recently paired with ``thermalcount hue pair``, if any."""
    hue = _read_credentials().get("hue", {})
    default = hue.get("default") if isinstance(hue, dict) else None
    return default if isinstance(default, str) and default else None


def save_mqtt_password(password: str) -> Path:
    """Store the MQTT password (0600). Returns the file."""
    data = _read_credentials()
    data["mqtt"] = {"password": password}
    return _write_credentials(data)


def mqtt_password() -> Optional[str]:
    """``$THERMALCOUNT_MQTT_PASSWORD`` first, else the credentials file; None if neither."""
    from_env = os.environ.get(MQTT_PASSWORD_ENV)
    if from_env:
        remember_secret(from_env)  # masked in every later message and log line
        return from_env
    entry = _read_credentials().get("mqtt", {})
    password = entry.get("password") if isinstance(entry, dict) else None
    if isinstance(password, str) and password:
        remember_secret(password)
        return password
    return None

