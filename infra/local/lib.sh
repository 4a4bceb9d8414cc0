# shellcheck shell=bash
# Shell helpers shared by infra/local/bin/* (sourced after env.sh).

# Print a message on stderr and stop.
die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# Print a progress message on stderr (stdout is left to the servers themselves).
say() {
    echo "${0##*/}: $*" >&2
}

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tool).
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# `reset` must not pull data from under a live server: refuse while its port answers.
require_port_free() {
    local port="$1" what="$2"
    if port_open "$port"; then
        die "$what is still running on 127.0.0.1:$port; stop it before reset"
    fi
}

# Install the Debian packages among "$@" that are not installed yet; quick no-op otherwise.
apt_ensure() {
    local pkg missing=()
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0

    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    say "installing Debian packages: ${missing[*]}"
    # Packages such as redis-server and rabbitmq-server start a system-wide service on install,
    # which would take our ports; a policy-rc.d that answers 101 forbids that. Container images
    # usually ship one already; otherwise put one in place only for this install.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        own_policy=1
    fi
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
        -o DPkg::Lock::Timeout=300 --no-install-recommends)
    # Try with the package lists we have first (apt-get update costs seconds); refresh and
    # retry when they are missing or stale.
    local rc=0
    "${apt[@]}" install "${missing[@]}" >&2 || {
        "${apt[@]}" update >&2 && "${apt[@]}" install "${missing[@]}" >&2
    } || rc=$?
    if ((own_policy)); then
        "${sudo[@]}" rm -f "$policy"
    fi
    ((rc == 0)) || die "apt-get install ${missing[*]} failed"
}

# Run the script's cmd_<name> function for "$1" (dashes become underscores), or print the usage.
dispatch() {
    local cmd="${1:-}"
    cmd="${cmd//-/_}"
    if [[ -n $cmd ]] && declare -F "cmd_$cmd" >/dev/null; then
        shift
        "cmd_$cmd" "$@"
        return
    fi
    local cmds
    cmds="$(declare -F | sed -n 's/^declare -f cmd_//p' | tr _ - | paste -sd '|')"
    echo "usage: ${0##*/} $cmds" >&2
    exit 2
}

# Home of a JDK 17 (Cassandra 5.0 and OpenSearch 2.19 both run on it; Cassandra 4.1 would not,
# OpenSearch 3.x needs 21): JAVA_HOME when it is a 17, else Debian's openjdk-17.
jdk17_home() {
    local home
    for home in "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-*; do
        [[ -n $home && -x $home/bin/java ]] || continue
        if "$home/bin/java" -version 2>&1 | grep -q 'version "17\.'; then
            echo "$home"
            return 0
        fi
    done
    return 1
}

# Install a JDK 17 when there is none.
jdk17_ensure() {
    jdk17_home >/dev/null || apt_ensure openjdk-17-jdk-headless
    jdk17_home >/dev/null || die "no JDK 17 found after installing openjdk-17-jdk-headless"
}

# Maven on JDK 17 with its local repository in the cache, so a fresh clone downloads nothing.
# Plugins are called with pinned versions by the callers (Debian's Maven defaults are old).
mvn_cached() {
    command -v mvn >/dev/null || apt_ensure maven
    JAVA_HOME="$(jdk17_home)" mvn -B -q -Dmaven.repo.local="$EMPORIUM_CACHE/m2" "$@"
}
