#!/usr/bin/env bash
# Make sure the PyPI package iec62056-21 (an IEC 62056-21 client we did not
# write) is installed in a project-local virtualenv, for
# tests/it/iec62056_python.rs, and print that virtualenv's interpreter.
#
# Usage: bash scripts/lib/iec62056_python.sh
#   Prints the interpreter's path on stdout and exits 0. Quick when the
#   package is already there. Otherwise creates target/python-iec62056 with
#   `python3 -m venv` (installing Debian's python3-venv through apt-get if
#   venv creation fails) and pip-installs iec62056-21==$IEC_PY_VERSION.
#   Exits non-zero, with the reason on stderr, if it cannot.
#
# Called by scripts/test, which carries on when this fails: the test then
# fails with its own message, so a missing package is never a silent skip.
set -euo pipefail

IEC_PY_VERSION=0.0.2
root=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
venv="$root/target/python-iec62056"
python="$venv/bin/python"

say() { printf 'iec62056-21: %s\n' "$*" >&2; }
fail() {
    printf 'iec62056-21: error: %s\n' "$*" >&2
    exit 1
}

installed() {
    [[ -x $python ]] &&
        [[ $("$python" -c 'import importlib.metadata as m; print(m.version("iec62056-21"))' 2>/dev/null) == "$IEC_PY_VERSION" ]]
}

if installed; then
    echo "$python"
    exit 0
fi
# Test processes may run this at the same time: one installs, the others
# wait and find it installed.
mkdir -p "$root/target"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$root/target/python-iec62056.lock"
    flock 9
    if installed; then
        echo "$python"
        exit 0
    fi
fi
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed"
if ! [[ -x $python ]] && ! python3 -m venv "$venv" >&2; then
    rm -rf "$venv"
    command -v apt-get >/dev/null 2>&1 || fail "python3 -m venv failed and this system has no apt-get"
    sudo=()
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || fail "python3 -m venv failed; run 'apt-get install python3-venv' as root"
        sudo=(sudo)
    fi
    say "python3 -m venv failed; installing Debian's python3-venv"
    "${sudo[@]}" apt-get update >&2 || fail "apt-get update failed (see above)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv >&2 ||
        fail "apt-get install -y python3-venv failed (see above)"
    python3 -m venv "$venv" >&2 || fail "python3 -m venv $venv failed (see above)"
fi
say "installing iec62056-21==$IEC_PY_VERSION into $venv"
"$python" -m pip install --quiet --disable-pip-version-check "iec62056-21==$IEC_PY_VERSION" >&2 ||
    fail "pip install iec62056-21==$IEC_PY_VERSION failed (see above)"
installed || fail "iec62056-21 $IEC_PY_VERSION is not importable after installing it"
echo "$python"
