#!/usr/bin/env bash
# Make sure mbpoll is installed: the independent Modbus master (Debian's
# package, built on libmodbus) that tests/it/mbpoll.rs drives against the
# simulators.
#
# Usage: bash scripts/lib/mbpoll.sh
#   Exits 0 if mbpoll is on PATH afterwards. If it is missing, runs
#   `apt-get update` and `apt-get install -y mbpoll` (through sudo when not
#   root). Exits non-zero, with the reason on stderr, if it cannot.
#
# Called by scripts/test, which carries on when this fails: tests/it/mbpoll.rs
# then fails with its own message, so a missing mbpoll is never a silent skip.
set -euo pipefail

say() { printf 'mbpoll: %s\n' "$*" >&2; }
fail() {
    printf 'mbpoll: error: %s\n' "$*" >&2
    exit 1
}

if command -v mbpoll >/dev/null 2>&1; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 ||
    fail "mbpoll is not installed and this system has no apt-get; install mbpoll (https://github.com/epsilonrt/mbpoll)"
sudo=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 ||
        fail "mbpoll is not installed, we are not root and there is no sudo; run 'apt-get install mbpoll' as root"
    sudo=(sudo)
fi
say "not found; installing Debian's mbpoll package"
say "running: ${sudo[*]:+${sudo[*]} }apt-get update"
"${sudo[@]}" apt-get update >&2 || fail "apt-get update failed (see above)"
say "running: ${sudo[*]:+${sudo[*]} }apt-get install -y mbpoll"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y mbpoll >&2 ||
    fail "apt-get install -y mbpoll failed (see above)"
command -v mbpoll >/dev/null 2>&1 || fail "the mbpoll package is installed but no mbpoll is on PATH"
say "installed $(dpkg-query -W -f='${Version}' mbpoll 2>/dev/null || echo '(version unknown)')"
