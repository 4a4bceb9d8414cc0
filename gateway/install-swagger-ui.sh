#!/usr/bin/env bash
# Installs Swagger UI (npm swagger-ui-dist, the version pinned in gateway/services.yaml) into the
# shared download cache, where gateway/render.py finds it. Idempotent: ~0.01 s once installed.
#   gateway/install-swagger-ui.sh          # installs if missing, prints the asset folder
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

version="$(sed -n 's/^ *swagger_ui_version: *"\{0,1\}\([0-9][0-9.]*\)"\{0,1\}.*/\1/p' \
    "$here/services.yaml")"
[[ -n "$version" ]] || { echo "swagger_ui_version not found in $here/services.yaml" >&2; exit 1; }

cache="${EMPORIUM_CACHE:-$HOME/.cache/emporium}"
prefix="$cache/swagger-ui-$version"
assets="$prefix/node_modules/swagger-ui-dist"

if [[ ! -f "$assets/swagger-ui-bundle.js" ]]; then
    command -v npm >/dev/null || { echo "npm is needed to install Swagger UI" >&2; exit 1; }
    mkdir -p "$cache"
    # Install into a temporary folder and rename it, so an interrupted install never leaves a
    # half-filled folder that looks complete.
    tmp="$(mktemp -d "$cache/.swagger-ui-$version.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    # --ignore-scripts: the package's only dependency (@scarf/scarf) phones home on install.
    npm install --prefix "$tmp" --ignore-scripts --no-audit --no-fund --no-save \
        --loglevel=error "swagger-ui-dist@$version" >&2
    chmod 755 "$tmp"  # mktemp makes it private; the gateway may run as another user
    rm -rf "$prefix"
    mv "$tmp" "$prefix"
    trap - EXIT
fi
echo "$assets"
