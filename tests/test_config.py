"""Config directory, config.toml, and credentials stored 0600."""

from __future__ import annotations

import os
import stat

import pytest

from thermalcount import config
from thermalcount.errors import ConfigError


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def write_config(text: str):
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("THERMALCOUNT_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert config.config_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("THERMALCOUNT_CONFIG_DIR")
    assert config.config_dir().name.lower() == "thermalcount"


def test_missing_config_is_empty():
    settings = config.load_config()
    assert settings.hue_bridge is None and settings.hue_lights == () and settings.off_delay is None


def test_config_values_are_read():
    write_config(
        '[hue]\nbridge = "192.168.1.20"\nlights = ["Hall", 3]\ngroup = "Living room"\n[lights]\noff_delay = 45\n'
        '[mqtt]\nurl = "mqtt://broker:1883"\nuser = "tc"\n'
    )
    settings = config.load_config()
    assert settings.hue_bridge == "192.168.1.20"
    assert settings.hue_lights == ("Hall", "3")
    assert settings.hue_group == "Living room"
    assert settings.off_delay == 45.0
    assert (settings.mqtt_url, settings.mqtt_user) == ("mqtt://broker:1883", "tc")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[hue\nbridge = 1", "not valid TOML"),
        ('hue = "x"', "[hue] must be a table"),
        ("[hue]\nlights = [true]", "lights must be a list"),
        ("[hue]\noff_delay = -3", "[hue] off_delay"),
        ("[lights]\noff_delay = -3", "[lights] off_delay"),
        ('[hue]\nkey = "abc"', "secret"),
        ('[mqtt]\npassword = "hunter2"', "THERMALCOUNT_MQTT_PASSWORD"),
    ],
)
def test_malformed_config_is_one_line_naming_the_file(text, expected):
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        config.load_config()
    message = str(caught.value)
    assert expected in message and str(path) in message
    assert "\n" not in message
    assert "hunter2" not in message


def test_unreadable_config_is_a_config_error():
    path = config.config_path()
    path.mkdir(parents=True)  # a directory where the file should be: unreadable as a file
    with pytest.raises(ConfigError, match="cannot read the config file"):
        config.load_config()


def test_hue_key_is_stored_0600_atomically(monkeypatch):
    os.umask(0)  # even with the loosest umask the file must never be readable by others
    try:
        path = config.save_hue_key("192.168.1.20", "secret-key-1")
    finally:
        os.umask(0o022)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left
    assert config.hue_key("192.168.1.20") == "secret-key-1"
    assert config.hue_key("10.0.0.1") is None
    assert config.paired_bridge() == "192.168.1.20"
    config.save_hue_key("10.0.0.1", "secret-key-2")
    assert config.hue_key("192.168.1.20") == "secret-key-1"  # older bridges are kept
    assert config.paired_bridge() == "10.0.0.1"
    assert mode(path) == 0o600


def test_environment_key_wins(monkeypatch):
    config.save_hue_key("h", "from-file")
    monkeypatch.setenv("THERMALCOUNT_HUE_KEY", "from-env")
    assert config.hue_key("h") == "from-env"


def test_loosened_credentials_are_tightened():
    path = config.save_hue_key("h", "k")
    os.chmod(path, 0o644)
    assert config.hue_key("h") == "k"
    assert mode(path) == 0o600


def test_malformed_credentials_are_a_config_error():
    path = config.save_hue_key("h", "k")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON") as caught:
        config.hue_key("h")
    assert str(path) in str(caught.value)


def test_mqtt_password(monkeypatch):
    assert config.mqtt_password() is None
    path = config.save_mqtt_password("pw-1")
    assert mode(path) == 0o600 and config.mqtt_password() == "pw-1"
    monkeypatch.setenv("THERMALCOUNT_MQTT_PASSWORD", "pw-env")
    assert config.mqtt_password() == "pw-env"
