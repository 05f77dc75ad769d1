#!/usr/bin/env bash
# Builds the Strom image: docker/build.sh [TAG]   (default tag: strom:latest)
# Needs cargo and a Docker engine. No base image: the release binary (stripped) and the shared
# libraries `ldd` lists for it are staged into docker/.stage/rootfs and copied into `scratch`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TAG="${1:-strom:latest}"
(cd "$ROOT" && cargo build --release --bin strom)
STAGE="$HERE/.stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/rootfs/data"
objcopy --strip-debug "$ROOT/target/release/strom" "$STAGE/rootfs/strom"
# Every library the dynamic loader resolves, at the path it resolves it from, plus the loader.
ldd "$ROOT/target/release/strom" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
  while read -r lib; do
    mkdir -p "$STAGE/rootfs$(dirname "$lib")"
    cp -L "$lib" "$STAGE/rootfs$lib"
  done
cp "$HERE/Dockerfile" "$STAGE/Dockerfile"
docker build -t "$TAG" "$STAGE"
docker image inspect "$TAG" --format '{{.Size}}' | awk -v t="$TAG" '{ printf "%s: %.1f MB\n", t, $1 / 1e6 }'
