# shellcheck shell=bash
# Make sure a PostgreSQL server answers and export DATABASE_URL, a server-level
# URL (the tests and the demo create their own databases on it).
#
# Sourced by scripts/test and scripts/demo (`source scripts/lib/postgres.sh ||
# exit 1`); sourcing does the work and returns non-zero on failure. Run as a
# program it takes a verb:
#   bash scripts/lib/postgres.sh [url]   ensure a server, print DATABASE_URL
#   bash scripts/lib/postgres.sh stop    stop the private cluster, if running
#
# Order of preference:
#   1. DATABASE_URL, if set and it answers;
#   2. OHMNIBUS_PG_PROBE_URL (default postgres://postgres@127.0.0.1:5432/postgres,
#      the trust-auth server our machines run);
#   3. a private cluster with trust auth in OHMNIBUS_PGDATA, initialised and
#      started on first use and reused afterwards. PostgreSQL is installed from
#      Debian's packages first if its binaries are missing.
#
# Environment:
#   DATABASE_URL              server to use, kept if it answers
#   OHMNIBUS_PG_PROBE_URL     server tried next (default above)
#   OHMNIBUS_PGDATA           private cluster's data directory (default
#                             /var/tmp/ohmnibus-pg as root, else
#                             ${XDG_STATE_HOME:-$HOME/.local/state}/ohmnibus/pg)
#   OHMNIBUS_PG_PORT          port for the private cluster (default 5432 if
#                             free, else the first free one of 54329-54339)
#   OHMNIBUS_PG_BINDIR        directory holding initdb and pg_ctl (default: the
#                             newest /usr/lib/postgresql/*/bin, else PATH)
#
# Messages go to stderr, prefixed "postgres:". The private cluster keeps
# running after the calling script ends; `bash scripts/lib/postgres.sh stop`
# stops it, and deleting its data directory forgets it.

_ohm_pg_default_probe=postgres://postgres@127.0.0.1:5432/postgres
_ohm_pg_fallback_ports=(54329 54330 54331 54332 54333 54334 54335 54336 54337 54338 54339)

_ohm_pg_say() { printf 'postgres: %s\n' "$*" >&2; }
_ohm_pg_fail() {
    printf 'postgres: error: %s\n' "$*" >&2
    return 1
}

# The URL with any password replaced by ***, for messages.
_ohm_pg_redact() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#'; }

_ohm_pg_is_root() { [[ $(id -u) == 0 ]]; }

# Runs a server-side command as the cluster's owner: the postgres user when we
# are root (PostgreSQL refuses to run as root), else ourselves. From / so the
# postgres user is not left in a directory it cannot read.
_ohm_pg_as_owner() {
    if _ohm_pg_is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Directory with initdb and pg_ctl: OHMNIBUS_PG_BINDIR, else the newest Debian
# installation, else whatever PATH has. Prints it; fails if there is none.
_ohm_pg_server_bindir() {
    local dir
    if [[ -n ${OHMNIBUS_PG_BINDIR:-} ]]; then
        if [[ -x $OHMNIBUS_PG_BINDIR/initdb && -x $OHMNIBUS_PG_BINDIR/pg_ctl ]]; then
            printf '%s\n' "$OHMNIBUS_PG_BINDIR"
            return 0
        fi
        _ohm_pg_fail "OHMNIBUS_PG_BINDIR=$OHMNIBUS_PG_BINDIR has no initdb and pg_ctl"
        return 1
    fi
    while IFS= read -r dir; do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname -- "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

# Binaries for the existing cluster in PGDATA: those of its own major version
# (OHMNIBUS_PG_BINDIR if set, which the user vouches for).
_ohm_pg_cluster_bindir() {
    local version
    version=$(<"$1/PG_VERSION")
    if [[ -n ${OHMNIBUS_PG_BINDIR:-} ]]; then
        _ohm_pg_server_bindir
    elif [[ -x /usr/lib/postgresql/$version/bin/pg_ctl ]]; then
        printf '%s\n' "/usr/lib/postgresql/$version/bin"
    else
        _ohm_pg_fail "the private cluster in $1 was made by PostgreSQL $version, which is not installed; install postgresql-$version, set OHMNIBUS_PG_BINDIR, or delete $1 to start afresh"
    fi
}

# Path of a client program (psql, pg_isready): PATH first, then the server
# binaries we are about to use, if any. Fails when there is none.
_ohm_pg_client() {
    if command -v "$1" 2>/dev/null; then
        return 0
    fi
    if [[ -n ${_ohm_pg_bindir:-} && -x $_ohm_pg_bindir/$1 ]]; then
        printf '%s\n' "$_ohm_pg_bindir/$1"
        return 0
    fi
    return 1
}

# Splits a postgres:// URL into _ohm_pg_host and _ohm_pg_port (defaults
# localhost and 5432; a host given as ?host=/dir is a socket directory).
_ohm_pg_parse_url() {
    local rest=${1#*://} query=
    [[ $rest == *\?* ]] && query=${rest#*\?}
    rest=${rest%%[/?]*}
    rest=${rest##*@}
    if [[ $rest == \[*\]* ]]; then
        _ohm_pg_host=${rest%%]*}
        _ohm_pg_host=${_ohm_pg_host#[}
        _ohm_pg_port=${rest##*]}
        _ohm_pg_port=${_ohm_pg_port#:}
    else
        _ohm_pg_host=${rest%%:*}
        _ohm_pg_port=${rest#"$_ohm_pg_host"}
        _ohm_pg_port=${_ohm_pg_port#:}
    fi
    if [[ -z $_ohm_pg_host && $query =~ (^|&)host=([^&]*) ]]; then
        _ohm_pg_host=${BASH_REMATCH[2]//%2[Ff]//}
    fi
    if [[ $query =~ (^|&)port=([0-9]+) ]]; then
        _ohm_pg_port=${BASH_REMATCH[2]}
    fi
    _ohm_pg_host=${_ohm_pg_host:-localhost}
    _ohm_pg_port=${_ohm_pg_port:-5432}
}

# True when something accepts TCP connections on HOST PORT (bash's /dev/tcp).
_ohm_pg_tcp_open() {
    # shellcheck disable=SC2016 # $0 and $1 are the inner shell's arguments
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# True when URL answers. Uses psql (a real login and query) if available, else
# pg_isready, else a bare TCP connect (or the socket file). Sets
# _ohm_pg_checked_with and, on failure, _ohm_pg_why.
_ohm_pg_answers() {
    local url=$1 tool out
    _ohm_pg_why=
    if tool=$(_ohm_pg_client psql); then
        _ohm_pg_checked_with=psql
        if out=$(PGCONNECT_TIMEOUT=5 "$tool" "$url" -X -A -t -q -w -c 'SELECT 1' 2>&1); then
            return 0
        fi
        _ohm_pg_why=$(printf '%s' "$out" | head -n 1)
        return 1
    fi
    if tool=$(_ohm_pg_client pg_isready); then
        _ohm_pg_checked_with=pg_isready
        if out=$("$tool" -t 5 -d "$url" 2>&1); then
            return 0
        fi
        _ohm_pg_why=$out
        return 1
    fi
    _ohm_pg_parse_url "$url"
    if [[ $_ohm_pg_host == /* ]]; then
        _ohm_pg_checked_with="socket file (psql is not installed)"
        [[ -S $_ohm_pg_host/.s.PGSQL.$_ohm_pg_port ]] && return 0
        _ohm_pg_why="no socket $_ohm_pg_host/.s.PGSQL.$_ohm_pg_port"
        return 1
    fi
    _ohm_pg_checked_with="TCP connect (psql is not installed)"
    _ohm_pg_tcp_open "$_ohm_pg_host" "$_ohm_pg_port" && return 0
    _ohm_pg_why="nothing listens on $_ohm_pg_host:$_ohm_pg_port"
    return 1
}

# Installs the postgresql package (server and client) from Debian's packages.
_ohm_pg_install() {
    local -a sudo=()
    if ! command -v apt-get >/dev/null 2>&1; then
        _ohm_pg_fail "PostgreSQL is not installed and this system has no apt-get; install the PostgreSQL server (initdb, pg_ctl) or set DATABASE_URL to a running server"
        return 1
    fi
    if ! _ohm_pg_is_root; then
        if ! command -v sudo >/dev/null 2>&1; then
            _ohm_pg_fail "PostgreSQL is not installed, we are not root and there is no sudo; run 'apt-get install postgresql' as root or set DATABASE_URL"
            return 1
        fi
        sudo=(sudo)
    fi
    _ohm_pg_say "PostgreSQL server binaries not found; installing Debian's postgresql package"
    _ohm_pg_say "running: ${sudo[*]:+${sudo[*]} }apt-get update"
    if ! "${sudo[@]}" apt-get update >&2; then
        _ohm_pg_fail "apt-get update failed (see above)"
        return 1
    fi
    _ohm_pg_say "running: ${sudo[*]:+${sudo[*]} }apt-get install -y postgresql"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; then
        _ohm_pg_fail "apt-get install -y postgresql failed (see above)"
        return 1
    fi
}

# Default data directory of the private cluster.
_ohm_pg_default_pgdata() {
    if [[ -n ${OHMNIBUS_PGDATA:-} ]]; then
        printf '%s\n' "$OHMNIBUS_PGDATA"
    elif _ohm_pg_is_root; then
        printf '%s\n' /var/tmp/ohmnibus-pg
    else
        printf '%s\n' "${XDG_STATE_HOME:-$HOME/.local/state}/ohmnibus/pg"
    fi
}

# True when the cluster in PGDATA has a live postmaster.
_ohm_pg_running() {
    _ohm_pg_as_owner "$_ohm_pg_bindir/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# First free port for a new or stopped private cluster.
_ohm_pg_pick_port() {
    local port
    for port in 5432 "${_ohm_pg_fallback_ports[@]}"; do
        if ! _ohm_pg_tcp_open 127.0.0.1 "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    _ohm_pg_fail "ports 5432 and ${_ohm_pg_fallback_ports[0]}-${_ohm_pg_fallback_ports[-1]} are all taken; set OHMNIBUS_PG_PORT"
    return 1
}

# Creates the data directory, owned by whoever will run the server.
_ohm_pg_make_datadir() {
    local pgdata=$1
    if _ohm_pg_is_root; then
        if ! id -u postgres >/dev/null 2>&1; then
            _ohm_pg_say "creating system user postgres (PostgreSQL refuses to run as root)"
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres ||
                { _ohm_pg_fail "could not create the postgres user"; return 1; }
        fi
        if ! { mkdir -p -- "$pgdata" && chown postgres:postgres -- "$pgdata" && chmod 700 -- "$pgdata"; }; then
            _ohm_pg_fail "could not create $pgdata owned by postgres"
            return 1
        fi
        if ! _ohm_pg_as_owner test -w "$pgdata"; then
            _ohm_pg_fail "user postgres cannot write $pgdata (a parent directory is closed to it); set OHMNIBUS_PGDATA to a directory such as /var/tmp/ohmnibus-pg"
            return 1
        fi
    else
        if ! { mkdir -p -- "$pgdata" && chmod 700 -- "$pgdata"; }; then
            _ohm_pg_fail "could not create $pgdata"
            return 1
        fi
    fi
}

# Starts (initialising first if needed) the private cluster and exports its URL.
_ohm_pg_private_cluster() {
    local pgdata conf status

    pgdata=$(_ohm_pg_default_pgdata)
    if [[ $pgdata != /* ]]; then
        pgdata=$PWD/$pgdata
    fi
    if [[ $pgdata == *\'* ]]; then
        _ohm_pg_fail "OHMNIBUS_PGDATA must not contain a quote: $pgdata"
        return 1
    fi
    conf=$pgdata/ohmnibus.conf

    if [[ -f $pgdata/PG_VERSION ]]; then
        _ohm_pg_bindir=$(_ohm_pg_cluster_bindir "$pgdata") || return 1
    elif ! _ohm_pg_bindir=$(_ohm_pg_server_bindir); then
        # A wrong OHMNIBUS_PG_BINDIR is the user's to fix, not apt's.
        [[ -n ${OHMNIBUS_PG_BINDIR:-} ]] && return 1
        _ohm_pg_install || return 1
        if ! _ohm_pg_bindir=$(_ohm_pg_server_bindir); then
            _ohm_pg_fail "postgresql is installed but no initdb/pg_ctl was found under /usr/lib/postgresql/*/bin"
            return 1
        fi
        # Installing may have started a server of its own that lets us in.
        if _ohm_pg_answers "$_ohm_pg_probe"; then
            export DATABASE_URL=$_ohm_pg_probe
            _ohm_pg_say "using the freshly installed server at $(_ohm_pg_redact "$DATABASE_URL")"
            return 0
        fi
    fi
    if _ohm_pg_is_root && ! command -v runuser >/dev/null 2>&1; then
        _ohm_pg_fail "running as root needs runuser (util-linux) to start PostgreSQL as user postgres"
        return 1
    fi

    _ohm_pg_make_datadir "$pgdata" || return 1
    # One script at a time sets the cluster up; a second one waits, then reuses it.
    _ohm_pg_lock_fd=
    if command -v flock >/dev/null 2>&1; then
        if ! { exec {_ohm_pg_lock_fd}>>"$pgdata.lock" && flock -w 120 "$_ohm_pg_lock_fd"; }; then
            _ohm_pg_fail "could not lock $pgdata.lock within 120 s"
            [[ -n $_ohm_pg_lock_fd ]] && exec {_ohm_pg_lock_fd}>&-
            _ohm_pg_lock_fd=
            return 1
        fi
    fi
    _ohm_pg_private_cluster_locked "$pgdata" "$conf"
    status=$?
    if [[ -n $_ohm_pg_lock_fd ]]; then
        exec {_ohm_pg_lock_fd}>&-
        _ohm_pg_lock_fd=
    fi
    return "$status"
}

# Starts the server. The lock's descriptor is closed for pg_ctl, or the
# postmaster would inherit it and hold the lock for as long as it runs.
_ohm_pg_start() {
    if [[ -n ${_ohm_pg_lock_fd:-} ]]; then
        _ohm_pg_as_owner "$_ohm_pg_bindir/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 -s start >&2 {_ohm_pg_lock_fd}>&-
    else
        _ohm_pg_as_owner "$_ohm_pg_bindir/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 -s start >&2
    fi
}

_ohm_pg_private_cluster_locked() {
    local pgdata=$1 conf=$2 port='' out url

    if [[ ! -f $pgdata/PG_VERSION ]]; then
        if [[ -n $(ls -A -- "$pgdata") ]]; then
            _ohm_pg_fail "$pgdata is not empty and holds no PostgreSQL cluster; empty it or set OHMNIBUS_PGDATA elsewhere"
            return 1
        fi
        _ohm_pg_say "initialising a private cluster in $pgdata ($_ohm_pg_bindir/initdb, trust auth)"
        if ! out=$(_ohm_pg_as_owner "$_ohm_pg_bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-locale 2>&1); then
            printf '%s\n' "$out" >&2
            _ohm_pg_fail "initdb failed in $pgdata (output above)"
            return 1
        fi
        if ! printf "\n# Settings of scripts/lib/postgres.sh (port, sockets, speed).\ninclude_if_exists 'ohmnibus.conf'\n" |
            _ohm_pg_as_owner tee -a "$pgdata/postgresql.conf" >/dev/null; then
            _ohm_pg_fail "could not write $pgdata/postgresql.conf"
            return 1
        fi
    else
        _ohm_pg_say "reusing the private cluster in $pgdata"
    fi

    if _ohm_pg_running "$pgdata"; then
        port=$(sed -n 4p "$pgdata/postmaster.pid" 2>/dev/null)
        [[ -n ${OHMNIBUS_PG_PORT:-} && $OHMNIBUS_PG_PORT != "$port" ]] &&
            _ohm_pg_say "the private cluster already runs on port $port; OHMNIBUS_PG_PORT=$OHMNIBUS_PG_PORT applies after 'bash scripts/lib/postgres.sh stop'"
        _ohm_pg_say "the private cluster is running on port $port"
    else
        if [[ -n ${OHMNIBUS_PG_PORT:-} ]]; then
            port=$OHMNIBUS_PG_PORT
            if _ohm_pg_tcp_open 127.0.0.1 "$port"; then
                _ohm_pg_fail "OHMNIBUS_PG_PORT=$port is taken by another program"
                return 1
            fi
        else
            [[ -f $conf ]] && port=$(sed -n 's/^port = \([0-9][0-9]*\).*/\1/p' "$conf")
            if [[ -z $port ]] || _ohm_pg_tcp_open 127.0.0.1 "$port"; then
                port=$(_ohm_pg_pick_port) || return 1
            fi
        fi
        if ! printf '%s\n' \
            "# Written by scripts/lib/postgres.sh: a private, disposable development cluster." \
            "listen_addresses = '127.0.0.1'" \
            "port = $port" \
            "unix_socket_directories = '$pgdata'" \
            "# Disposable data: crash safety traded for test speed." \
            "fsync = off" \
            "synchronous_commit = off" \
            "full_page_writes = off" |
            _ohm_pg_as_owner tee "$conf" >/dev/null; then
            _ohm_pg_fail "could not write $conf"
            return 1
        fi
        _ohm_pg_say "starting the private cluster on 127.0.0.1:$port (log: $pgdata/server.log)"
        if ! _ohm_pg_start "$pgdata"; then
            tail -n 20 -- "$pgdata/server.log" >&2 2>/dev/null
            _ohm_pg_fail "pg_ctl could not start the private cluster in $pgdata (log tail above)"
            return 1
        fi
    fi

    # A server that is still starting, or that died a moment ago (its
    # postmaster.pid not yet stale), gets a few seconds and one restart.
    url=postgres://postgres@127.0.0.1:$port/postgres
    local tries=0
    until _ohm_pg_answers "$url"; do
        tries=$((tries + 1))
        if ((tries > 15)); then
            _ohm_pg_fail "the private cluster in $pgdata does not answer at $url (${_ohm_pg_why:-no reason given}); see $pgdata/server.log"
            return 1
        fi
        if ! _ohm_pg_running "$pgdata"; then
            _ohm_pg_say "the private cluster is not running after all; starting it"
            if ! _ohm_pg_start "$pgdata"; then
                tail -n 20 -- "$pgdata/server.log" >&2 2>/dev/null
                _ohm_pg_fail "pg_ctl could not start the private cluster in $pgdata (log tail above)"
                return 1
            fi
        fi
        sleep 1
    done
    export DATABASE_URL=$url
    _ohm_pg_say "using the private cluster: DATABASE_URL=$DATABASE_URL"
}

# Ensures a server answers and exports DATABASE_URL.
ohmnibus_pg_ensure() {
    _ohm_pg_probe=${OHMNIBUS_PG_PROBE_URL:-$_ohm_pg_default_probe}
    _ohm_pg_bindir=
    if [[ -n ${DATABASE_URL:-} ]]; then
        if _ohm_pg_answers "$DATABASE_URL"; then
            export DATABASE_URL
            _ohm_pg_say "using DATABASE_URL=$(_ohm_pg_redact "$DATABASE_URL") (checked with $_ohm_pg_checked_with)"
            return 0
        fi
        _ohm_pg_say "DATABASE_URL=$(_ohm_pg_redact "$DATABASE_URL") does not answer (${_ohm_pg_why:-?}); trying $(_ohm_pg_redact "$_ohm_pg_probe")"
    fi
    if _ohm_pg_answers "$_ohm_pg_probe"; then
        export DATABASE_URL=$_ohm_pg_probe
        _ohm_pg_say "using $(_ohm_pg_redact "$DATABASE_URL") (checked with $_ohm_pg_checked_with)"
        return 0
    fi
    _ohm_pg_say "no server at $(_ohm_pg_redact "$_ohm_pg_probe") (${_ohm_pg_why:-?}); using a private cluster"
    _ohm_pg_private_cluster
}

# Stops the private cluster if it runs (fast shutdown).
ohmnibus_pg_stop() {
    local pgdata
    pgdata=$(_ohm_pg_default_pgdata)
    if [[ ! -f $pgdata/PG_VERSION ]]; then
        _ohm_pg_say "no private cluster in $pgdata"
        return 0
    fi
    _ohm_pg_bindir=$(_ohm_pg_cluster_bindir "$pgdata") || return 1
    if ! _ohm_pg_running "$pgdata"; then
        _ohm_pg_say "the private cluster in $pgdata is not running"
        return 0
    fi
    _ohm_pg_say "stopping the private cluster in $pgdata"
    _ohm_pg_as_owner "$_ohm_pg_bindir/pg_ctl" -D "$pgdata" -m fast -w -s stop >&2 ||
        { _ohm_pg_fail "pg_ctl stop failed for $pgdata"; return 1; }
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -uo pipefail
    case ${1:-url} in
    url)
        ohmnibus_pg_ensure || exit 1
        printf '%s\n' "$DATABASE_URL"
        ;;
    stop) ohmnibus_pg_stop || exit 1 ;;
    *)
        echo "usage: bash scripts/lib/postgres.sh [url|stop]" >&2
        exit 2
        ;;
    esac
else
    ohmnibus_pg_ensure
fi
