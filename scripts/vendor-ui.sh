#!/usr/bin/env bash
# Vendors the browser libraries the management API serves, pinned, from the npm registry into the package,
# so every page is served from local files (no CDN):
#   - uPlot, the dashboard's chart library. Without it the dashboard still works; its pages show tables and
#     say the chart is not installed.
#   - swagger-ui-dist, the API explorer at /docs. Without it /docs lists the routes as plain HTML and links
#     the OpenAPI documents.
# Safe to run again: it only fetches what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
UPLOT_VERSION=1.6.32
SWAGGER_UI_VERSION=5.35.0
dest=tide/api/dashboard/static/vendor

# vendor NAME VERSION WHAT-WITHOUT-IT FILE... : copy each FILE (a path inside the npm package, or PATH:NAME
# to give it another name) into $dest.
target() { case $1 in *:*) echo "${1#*:}" ;; *) basename "$1" ;; esac; }

vendor() {
  local name=$1 version=$2 without=$3
  shift 3
  local missing=0 file
  for file in "$@"; do [ -f "$dest/$(target "$file")" ] || missing=1; done
  [ "$missing" = 0 ] && return 0
  if ! command -v npm >/dev/null; then
    echo "warning: npm not found; $without (apt-get install npm)" >&2
    return 0
  fi
  local work
  work=$(mktemp -d)
  # npm pack checks the tarball against the registry's integrity hash.
  if ! (cd "$work" && npm pack --silent "$name@$version" >/dev/null 2>&1); then
    echo "warning: could not fetch $name@$version from the npm registry; $without" >&2
    rm -rf "$work"
    return 0
  fi
  tar -xzf "$work/$name-$version.tgz" -C "$work"
  mkdir -p "$dest"
  for file in "$@"; do cp "$work/package/${file%%:*}" "$dest/$(target "$file")"; done
  echo "vendored $name $version into $dest"
  rm -rf "$work"
}

vendor uplot "$UPLOT_VERSION" "the dashboard will show tables without charts" \
  dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE
vendor swagger-ui-dist "$SWAGGER_UI_VERSION" "/docs will list the routes without the API explorer" \
  swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css LICENSE:LICENSE.swagger-ui
