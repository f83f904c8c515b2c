#!/usr/bin/env bash
# Install thermalcount on a Raspberry Pi (Raspberry Pi OS Bookworm, or Bullseye's Python 3.9):
# a virtual environment with the runtime only (no torch), a check of I2C and the sensor with
# `thermalcount doctor`, and a systemd unit rendered with the venv's path and the service user.
# Safe to run again: that is also how to update (git pull, then run it again). See docs/install.md.
#
#   sudo scripts/install-pi.sh                  # install or update from this checkout
#   sudo scripts/install-pi.sh --wheel thermalcount-0.1.0-py3-none-any.whl
#   sudo scripts/install-pi.sh --uninstall      # unit and venv go; config and recordings stay
#
# Every target can be moved with an environment variable (CI points them all at a temp dir):
#   THERMALCOUNT_VENV        the venv                      (default /opt/thermalcount/venv)
#   THERMALCOUNT_UNIT_DIR    where the unit goes           (default /etc/systemd/system)
#   THERMALCOUNT_USER        the user the service runs as  (default: the user who ran sudo)
#   THERMALCOUNT_CONFIG_DIR  config.toml, credentials      (default ~USER/.config/thermalcount)
#   THERMALCOUNT_DATA_DIR    event log and recordings      (default ~USER/thermalcount)
#   THERMALCOUNT_SENSOR      amg8833 (default) or emulated (no hardware: CI, a laptop)
#   THERMALCOUNT_LIGHTS      hue or console (default: hue once doctor finds a bridge, else console)
#   THERMALCOUNT_PYTHON      the interpreter for the venv  (default python3)
#   THERMALCOUNT_WHEEL       a wheel to install instead of this checkout (same as --wheel)
#   THERMALCOUNT_PIP_ARGS    extra pip arguments, e.g. "--no-index --find-links /media/usb/wheels"
#   THERMALCOUNT_NO_SYSTEMCTL=1   write the unit but do not call systemctl
#   THERMALCOUNT_NO_DOCTOR=1      skip the doctor check (not recommended)
set -euo pipefail

say() { printf 'install-pi: %s\n' "$*" >&2; }
die() { printf 'Error: %s\n' "$*" >&2; exit 1; }

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNINSTALL=0
WHEEL="${THERMALCOUNT_WHEEL:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) UNINSTALL=1 ;;
        --wheel) [ $# -ge 2 ] || { echo "Error: --wheel needs a path to a .whl file" >&2; exit 2; }; WHEEL="$2"; shift ;;
        --wheel=*) WHEEL="${1#--wheel=}" ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "Error: unknown option $1; use --uninstall, --wheel PATH or --help" >&2; exit 2 ;;
    esac
    shift
done

SERVICE_USER="${THERMALCOUNT_USER:-${SUDO_USER:-$(id -un)}}"
USER_HOME="$(getent passwd "$SERVICE_USER" | cut -d: -f6 || true)"
[ -n "$USER_HOME" ] || die "user $SERVICE_USER does not exist; set THERMALCOUNT_USER to the user the service runs as"
VENV="${THERMALCOUNT_VENV:-/opt/thermalcount/venv}"
UNIT_DIR="${THERMALCOUNT_UNIT_DIR:-/etc/systemd/system}"
CONFIG_DIR="${THERMALCOUNT_CONFIG_DIR:-$USER_HOME/.config/thermalcount}"
DATA_DIR="${THERMALCOUNT_DATA_DIR:-$USER_HOME/thermalcount}"
SENSOR="${THERMALCOUNT_SENSOR:-amg8833}"
PYTHON="${THERMALCOUNT_PYTHON:-python3}"
UNIT="$UNIT_DIR/thermalcount.service"
TEMPLATE="$CHECKOUT/examples/thermalcount.service"
USE_SYSTEMCTL=1
[ "${THERMALCOUNT_NO_SYSTEMCTL:-0}" = "1" ] && USE_SYSTEMCTL=0
AS_ROOT=0
[ "$(id -u)" = "0" ] && AS_ROOT=1

for path in "$VENV" "$UNIT_DIR" "$CONFIG_DIR" "$DATA_DIR"; do
    case "$path" in
        /*) ;;
        *) die "$path is not an absolute path; give THERMALCOUNT_* directories as absolute paths" ;;
    esac
done

# A target the current user cannot write (the defaults /opt and /etc): say sudo, in one line.
writable_or_die() {
    local probe="$1"
    while [ ! -e "$probe" ]; do probe="$(dirname "$probe")"; done
    [ -w "$probe" ] || die "cannot write $1 as $(id -un); run with sudo, or point THERMALCOUNT_${2} elsewhere"
}

systemctl_do() {
    if [ "$USE_SYSTEMCTL" = "1" ]; then
        command -v systemctl >/dev/null 2>&1 || die "systemctl not found; set THERMALCOUNT_NO_SYSTEMCTL=1 to only write the unit"
        systemctl "$@"
    fi
}

# ------------------------------------------------------------------------------ uninstall
if [ "$UNINSTALL" = "1" ]; then
    if [ -f "$UNIT" ]; then
        writable_or_die "$UNIT_DIR" UNIT_DIR
        systemctl_do disable --now thermalcount.service || say "systemctl could not stop the service (was it running?)"
        rm -f "$UNIT"
        systemctl_do daemon-reload
        say "removed $UNIT"
    else
        say "no unit at $UNIT"
    fi
    if [ -f "$VENV/pyvenv.cfg" ]; then
        # Only ever delete what is recognisably a venv: a typo in THERMALCOUNT_VENV must not cost a folder.
        writable_or_die "$VENV" VENV
        rm -rf "$VENV"
        rmdir "$(dirname "$VENV")" 2>/dev/null || true
        say "removed the venv $VENV"
    elif [ -e "$VENV" ]; then
        die "$VENV is not a venv (no pyvenv.cfg); not deleting it"
    else
        say "no venv at $VENV"
    fi
    say "kept your settings in $CONFIG_DIR and your recordings and event log in $DATA_DIR; delete them yourself if you want"
    exit 0
fi

# ------------------------------------------------------------------------------ install
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing; run this script from a thermalcount checkout"
if [ -n "$WHEEL" ]; then
    [ -f "$WHEEL" ] || die "wheel $WHEEL does not exist; build one with 'python3 -m pip wheel --no-deps -w dist .'"
    case "$WHEEL" in *.whl) ;; *) die "$WHEEL is not a .whl file" ;; esac
    SOURCE="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
else
    [ -f "$CHECKOUT/pyproject.toml" ] || die "$CHECKOUT is not a thermalcount checkout; pass --wheel PATH"
    SOURCE="$CHECKOUT"
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3.9 or newer (sudo apt install python3)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || die "$("$PYTHON" -V 2>&1) is too old; thermalcount needs Python 3.9 or newer"
writable_or_die "$VENV" VENV
writable_or_die "$UNIT_DIR" UNIT_DIR

# 1. The venv. Bookworm refuses pip outside one (externally-managed-environment); a venv is
#    also what keeps the service's packages apart from the system's.
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "using the existing venv $VENV"
else
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
        die "$VENV exists and is not a venv; choose another THERMALCOUNT_VENV"
    fi
    say "creating the venv $VENV"
    "$PYTHON" -m venv "$VENV" \
        || die "could not create a venv with $PYTHON; on Raspberry Pi OS run 'sudo apt install python3-venv' first"
fi

# 2. The runtime only: no [train] extra, so no torch and no scikit-learn on the Pi.
say "installing thermalcount (runtime only) from $SOURCE"
# shellcheck disable=SC2086  # THERMALCOUNT_PIP_ARGS is a list of arguments on purpose
"$VENV/bin/python" -m pip install --quiet ${THERMALCOUNT_PIP_ARGS:-} "$SOURCE" \
    || die "pip could not install thermalcount into $VENV (see above); check the network or THERMALCOUNT_PIP_ARGS"
VERSION="$("$VENV/bin/thermalcount" --version)" || die "$VENV/bin/thermalcount does not run"
say "$VERSION installed in $VENV"
if "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
    say "note: torch is in $VENV; the Pi does not need it (training runs on a laptop, see docs/model.md)"
fi

# 3. Folders the service uses, owned by its user.
mkdir -p "$CONFIG_DIR" "$DATA_DIR"
chmod 700 "$CONFIG_DIR"
if [ "$AS_ROOT" = "1" ] && [ "$SERVICE_USER" != "root" ]; then
    chown "$SERVICE_USER:" "$CONFIG_DIR" "$DATA_DIR"
fi

# 4. I2C and the sensor, the model, the config: doctor, as the service user.
as_user() {
    if [ "$AS_ROOT" = "1" ] && [ "$SERVICE_USER" != "root" ]; then
        runuser -u "$SERVICE_USER" -- env THERMALCOUNT_CONFIG_DIR="$CONFIG_DIR" "$@"
    else
        env THERMALCOUNT_CONFIG_DIR="$CONFIG_DIR" "$@"
    fi
}
LIGHTS="${THERMALCOUNT_LIGHTS:-}"
if [ "${THERMALCOUNT_NO_DOCTOR:-0}" != "1" ]; then
    say "checking the set-up: thermalcount doctor --sensor $SENSOR"
    REPORT="$(mktemp)"
    trap 'rm -f "$REPORT"' EXIT
    if ! as_user "$VENV/bin/thermalcount" doctor --sensor "$SENSOR" --data-dir "$DATA_DIR" --json >"$REPORT"; then
        as_user "$VENV/bin/thermalcount" doctor --sensor "$SENSOR" --data-dir "$DATA_DIR" || true
        die "doctor found a problem (rows marked FAIL above); fix it and run this script again (the venv is kept, so it is quick)"
    fi
    if [ -z "$LIGHTS" ]; then
        LIGHTS="$("$VENV/bin/python" -c 'import json, sys
rows = {row["name"]: row["status"] for row in json.load(open(sys.argv[1]))["checks"]}
print("hue" if rows.get("hue lights") == "ok" else "console")' "$REPORT")"
    fi
fi
LIGHTS="${LIGHTS:-console}"
case "$LIGHTS" in hue|console) ;; *) die "THERMALCOUNT_LIGHTS must be hue or console, not $LIGHTS" ;; esac
[ "$LIGHTS" = "console" ] && say "no Hue bridge and lights configured yet: the service logs light changes only; pair (thermalcount hue pair --bridge HOST), set [hue] group in config.toml, then run this script again"

# 5. The unit, rendered from examples/thermalcount.service.
GROUP_LINE="# (no i2c group on this machine)"
getent group i2c >/dev/null 2>&1 && GROUP_LINE="SupplementaryGroups=i2c"
escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
mkdir -p "$UNIT_DIR"
RENDERED="$(mktemp "$UNIT_DIR/.thermalcount.service.XXXXXX")"  # beside the unit: the mv is a rename
sed -e "s|@VENV@|$(escape "$VENV")|g" -e "s|@USER@|$(escape "$SERVICE_USER")|g" \
    -e "s|@CONFIG_DIR@|$(escape "$CONFIG_DIR")|g" -e "s|@DATA_DIR@|$(escape "$DATA_DIR")|g" \
    -e "s|@SENSOR@|$(escape "$SENSOR")|g" -e "s|@LIGHTS@|$(escape "$LIGHTS")|g" \
    -e "s|^@GROUP_LINE@\$|$(escape "$GROUP_LINE")|" "$TEMPLATE" >"$RENDERED"
if [ -f "$UNIT" ] && cmp -s "$RENDERED" "$UNIT"; then
    rm -f "$RENDERED"
    say "$UNIT unchanged"
else
    chmod 644 "$RENDERED"
    mv -f "$RENDERED" "$UNIT"   # one rename: systemd never reads half a unit
    say "wrote $UNIT (runs as $SERVICE_USER: $VENV/bin/thermalcount run --sensor $SENSOR --lights $LIGHTS)"
fi

# 6. Enable and (re)start it, so an update takes effect at once.
if [ "$USE_SYSTEMCTL" = "1" ]; then
    systemctl_do daemon-reload
    systemctl_do enable thermalcount.service
    systemctl_do restart thermalcount.service
    say "service enabled and started; follow it with: journalctl -u thermalcount -f"
else
    say "THERMALCOUNT_NO_SYSTEMCTL=1: unit written, systemctl not called"
fi
say "done. Check any time with: $VENV/bin/thermalcount doctor"
