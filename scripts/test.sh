#!/usr/bin/env bash
# Installs everything the tests need and runs them. The README's test command and .ci/run
# both call exactly this script.
#   - Debian's mosquitto broker (the MQTT tests start their own on a free loopback port)
#   - a virtualenv in .venv with the package, the [train] extra (torch CPU 2.13) and [dev]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing mosquitto (Debian package) for the MQTT tests" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    else
        echo "mosquitto is missing: run 'sudo apt-get install -y mosquitto' first" >&2
        exit 1
    fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e '.[train,dev]'
exec .venv/bin/python -m pytest "$@"
