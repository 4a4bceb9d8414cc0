#!/usr/bin/env bash
# Installs the toolchain `make` needs when it is missing, on a fresh Debian machine with Python
# 3.11 and root (or sudo): uv at the version pinned in pyproject.toml, Go, npm. Quick no-op when
# all is there (`make setup`, `make run` and `make test` call it first; .ci/run only calls make).
#
#   infra/local/toolchain.sh            # install what is missing; prints nothing when all is there
#   infra/local/toolchain.sh uv-path    # where the pinned uv lives (the Makefile's default UV)
#
# uv: $UV when it is the pinned version, else a `pip install --target` into .tools/uv-<version>/
#     (pip's --target needs no virtualenv and is allowed on Debian's externally-managed Python).
# Go: /usr/local/go (the official tarball) or `go` on PATH when it is at least GO_MIN; else the
#     Go distribution of that version from the Go module proxy (the golang.org/toolchain module,
#     what GOTOOLCHAIN downloads), fetched with Debian's golang-go into the download cache.
# npm: Debian's npm (Swagger UI's assets, the Node client).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$EMPORIUM_ROOT/infra/local/lib.sh"

GO_MIN=1.26.0  # the Go client's modules (grpc-go, genproto) need Go >= 1.26
GO_FETCH=1.26.8
UV_VERSION="$(sed -n 's/^required-version = "==\(.*\)"/\1/p' "$EMPORIUM_ROOT/pyproject.toml")"
UV_DEFAULT="$EMPORIUM_ROOT/.tools/uv-$UV_VERSION/bin/uv"

# True when version $1 >= version $2 (dotted numbers).
version_ge() {
    [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" == "$2" ]]
}

ensure_uv() {
    local uv="${UV:-$UV_DEFAULT}"
    if [[ "$("$uv" --version 2>/dev/null | cut -d' ' -f2)" == "$UV_VERSION" ]]; then
        return 0
    fi
    if [[ "$uv" != "$UV_DEFAULT" ]]; then
        say "UV=$uv is not uv $UV_VERSION (pyproject.toml); using $UV_DEFAULT"
    fi
    python3 -m pip --version >/dev/null 2>&1 || apt_ensure python3-pip
    say "installing uv $UV_VERSION into .tools/"
    rm -rf "$EMPORIUM_ROOT/.tools/uv-$UV_VERSION"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
        --target "$EMPORIUM_ROOT/.tools/uv-$UV_VERSION" "uv==$UV_VERSION" >&2
    [[ -x $UV_DEFAULT ]] || die "uv $UV_VERSION did not install into $UV_DEFAULT"
}

go_version() {
    "$1" env GOVERSION 2>/dev/null | sed 's/^go//'
}

# Prints the folder of a Go >= GO_MIN's `go`, installing one when there is none.
ensure_go() {
    local go candidate
    for candidate in /usr/local/go/bin/go "$(command -v go || true)" \
        "$EMPORIUM_CACHE/go-$GO_FETCH/bin/go"; do
        [[ -n $candidate && -x $candidate ]] || continue
        if version_ge "$(go_version "$candidate")" "$GO_MIN"; then
            dirname "$candidate"
            return 0
        fi
    done
    # Debian's golang-go is older than GO_MIN (1.19 on bookworm) but can download a module: the
    # whole Go distribution is one on the module proxy.
    go="$(command -v go || true)"
    if [[ -z $go ]]; then
        apt_ensure golang-go
        go=/usr/bin/go
    fi
    local arch
    arch="$("$go" env GOARCH)"
    say "installing Go $GO_FETCH from the Go module proxy into $EMPORIUM_CACHE/go-$GO_FETCH"
    local gopath
    gopath="$(mktemp -d)"
    local dir
    dir="$(cd /tmp && GOPATH="$gopath" GOFLAGS=-modcacherw GO111MODULE=on "$go" mod download \
        -json "golang.org/toolchain@v0.0.1-go$GO_FETCH.linux-$arch" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n $dir && -f $dir/bin/go ]] || die "could not download Go $GO_FETCH"
    rm -rf "$EMPORIUM_CACHE/go-$GO_FETCH"
    mkdir -p "$EMPORIUM_CACHE"
    cp -a "$dir" "$EMPORIUM_CACHE/go-$GO_FETCH"
    # Module zips keep no file modes: make the commands executable again (as GOTOOLCHAIN does).
    chmod -R u+w "$EMPORIUM_CACHE/go-$GO_FETCH"
    find "$EMPORIUM_CACHE/go-$GO_FETCH/bin" "$EMPORIUM_CACHE/go-$GO_FETCH/pkg/tool" -type f \
        -exec chmod +x {} +
    chmod -R u+w "$gopath" && rm -rf "$gopath"
    echo "$EMPORIUM_CACHE/go-$GO_FETCH/bin"
}

case "${1:-install}" in
uv-path) echo "$UV_DEFAULT" ;;
go-bin) ensure_go ;;
install)
    command -v npm >/dev/null || apt_ensure npm
    ensure_go >/dev/null
    ensure_uv
    ;;
*) die "usage: ${0##*/} [install|uv-path|go-bin]" ;;
esac
