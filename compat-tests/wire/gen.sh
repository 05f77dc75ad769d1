#!/usr/bin/env bash
# Regenerates the byte-exact Kafka wire fixtures in tests/fixtures/wire/*.hex.
#
# Compiles compat-tests/wire/WireFixtures.java against Apache Kafka 4.4.0's jars (clients and
# group coordinator; ${COMPAT_CACHE:-compat-tests/.cache}/lib44, put there by
# `bash compat-tests/install.sh java`) into a temporary directory and runs it. The program
# serializes request/response BODIES (no size prefix, no header) with Kafka's own generated message
# classes, and __consumer_offsets record keys/values with Kafka's GroupCoordinatorRecordSerde,
# checks that each reads back equal, and writes one lowercase hex line per fixture. The Rust tests
# compare our codecs against them.
#
# The .hex files are committed; this script only needs to be rerun when fixtures are added or
# changed. Usage (from the repo root): bash compat-tests/wire/gen.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CACHE="${COMPAT_CACHE:-compat-tests/.cache}"
LIB="$CACHE/lib44"
OUT="tests/fixtures/wire"

if ! ls "$LIB"/kafka-clients-4.4.0.jar >/dev/null 2>&1; then
  echo "gen.sh: $LIB/kafka-clients-4.4.0.jar not found; run \`bash compat-tests/install.sh java\` first" >&2
  echo "        (or point COMPAT_CACHE at a cache that has lib44/)" >&2
  exit 1
fi
command -v javac >/dev/null || { echo "gen.sh: javac not found (a JDK 17+ is needed)" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/strom-wire-fixtures.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

javac -nowarn -d "$TMP" -cp "$LIB/*" compat-tests/wire/WireFixtures.java
mkdir -p "$OUT"
java -cp "$TMP:$LIB/*" WireFixtures "$OUT"

echo "fixtures in $OUT:"
ls -1 "$OUT"/*.hex
