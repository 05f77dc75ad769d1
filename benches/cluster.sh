#!/usr/bin/env bash
# Three-node Strom against three-node Apache Kafka 4.4.0 on this machine: replicated produce
# (RF 3, acks=all) MB/s, p99 and broker CPU per GB, and failover time after kill -9 of a
# leader. Writes benches/CLUSTER_RESULTS.md (raw output under benches/.out/cluster/).
#
#   bash benches/cluster.sh [--records N] [--rounds R]     (defaults 500000 and 3; ~10 min)
#
# Env: STROM_BIN (a prebuilt broker), KAFKA_LIB (a directory of Kafka 4.4.0 jars; default: the
# one benches/run.sh keeps, else compat-tests'), BENCH_TMP (where data dirs go).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="$HERE/.out/cluster"
mkdir -p "$OUT" "$HERE/.cache"
log() { printf '[cluster bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

STROM_BIN="${STROM_BIN:-}"
if [ -z "$STROM_BIN" ]; then
  log "building Strom (release)"
  (cd "$REPO" && cargo build --release --bin strom) >"$OUT/build.log" 2>&1 \
    || { log "cargo build failed (see $OUT/build.log)"; exit 2; }
  STROM_BIN="$REPO/target/release/strom"
fi
KAFKA_LIB="${KAFKA_LIB:-}"
for d in "$HERE/.cache/lib44" "$REPO/compat-tests/.cache/lib44"; do
  [ -z "$KAFKA_LIB" ] && [ -f "$d/kafka_2.13-4.4.0.jar" ] && [ -f "$d/kafka-tools-4.4.0.jar" ] && KAFKA_LIB="$d"
done
if [ -z "$KAFKA_LIB" ]; then
  log "fetching the Kafka 4.4.0 jars (bash compat-tests/install.sh java)"
  bash "$REPO/compat-tests/install.sh" java || exit 2
  KAFKA_LIB="$REPO/compat-tests/.cache/lib44"
fi
VENV="$HERE/.cache/venv"
if ! "$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  log "installing confluent-kafka into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q confluent-kafka==2.16.1 >"$OUT/pip.log" 2>&1 \
    || { log "pip failed (see $OUT/pip.log)"; exit 2; }
fi
python3 "$HERE/cluster.py" --strom "$STROM_BIN" --kafka-lib "$KAFKA_LIB" --python "$VENV/bin/python" \
  --out "$OUT" "$@" || exit 1
cp "$OUT/CLUSTER_RESULTS.md" "$HERE/CLUSTER_RESULTS.md"
log "wrote benches/CLUSTER_RESULTS.md"
