#!/usr/bin/env bash
# Vendors the dashboard's chart library (uPlot, pinned) from the npm registry into the package, so the
# dashboard serves every asset itself (no CDN). Safe to run again: it only fetches when the file is missing.
# Without it the dashboard still works; its pages show tables and say the chart is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
UPLOT_VERSION=1.6.32
dest=tide/api/dashboard/static/vendor
[ -f "$dest/uPlot.iife.min.js" ] && [ -f "$dest/uPlot.min.css" ] && exit 0
if ! command -v npm >/dev/null; then
  echo "warning: npm not found; the dashboard will show tables without charts (apt-get install npm)" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# npm pack checks the tarball against the registry's integrity hash.
if ! (cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null 2>&1); then
  echo "warning: could not fetch uplot@$UPLOT_VERSION from the npm registry; the dashboard will show tables without charts" >&2
  exit 0
fi
tar -xzf "$work/uplot-$UPLOT_VERSION.tgz" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$dest/"
echo "vendored uPlot $UPLOT_VERSION into $dest"
