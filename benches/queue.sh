#!/usr/bin/env bash
# Share groups (KIP-932 queues): single-node Strom against single-node Apache Kafka 4.4.0, with
# three Java 4.4 KafkaShareConsumers (explicit acknowledgement, ACCEPT + commitSync per poll):
# drain throughput on 1 and 6 partitions (records/s, broker CPU s per million records, RSS) and
# delivery latency at a fixed produce rate (p50/p99/max). Writes benches/QUEUE_RESULTS.md (raw
# output under benches/.out/queue/).
#
#   bash benches/queue.sh [--records N] [--rounds R] [--rate X] [--seconds D] [--only strom|kafka]
#     defaults: 300000 records of 100 B, 3 rounds, 2000 records/s for 20 s (~5 min plus the build)
#
# Env: STROM_BIN (a prebuilt broker), KAFKA_LIB (a directory of Kafka 4.4.0 jars; default: the
# one benches/run.sh keeps, else compat-tests'), BENCH_TMP (where data dirs go).
# Exit: 0 ok, 1 a measurement failed (see QUEUE_RESULTS.md), 2 setup error.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="$HERE/.out/queue"
mkdir -p "$OUT" "$HERE/.cache/run"
PIDFILE="$HERE/.cache/run/queue-pids"
: >"$PIDFILE"
touch "$OUT/.started"
log() { printf '[queue bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
  # Stop every process this run started (brokers, Java clients), by PID only.
  [ -n "${DRIVER_PID:-}" ] && kill -TERM "$DRIVER_PID" 2>/dev/null
  if [ -s "$PIDFILE" ]; then
    while read -r pid; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; done <"$PIDFILE"
    sleep 2
    while read -r pid; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; done <"$PIDFILE"
    : >"$PIDFILE"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case "${1:-}" in -h|--help) sed -n '2,13p' "$0"; exit 0 ;; esac
for tool in java javac python3 cargo; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done

STROM_BIN="${STROM_BIN:-}"
if [ -z "$STROM_BIN" ]; then
  log "building Strom (release)"
  (cd "$REPO" && cargo build --release --bin strom) >"$OUT/build.log" 2>&1 \
    || { log "cargo build failed (see $OUT/build.log)"; tail -20 "$OUT/build.log" >&2; exit 2; }
  STROM_BIN="$REPO/target/release/strom"
fi
# A copy: another cargo build on the machine may replace target/release/strom mid-run.
if [ "$(realpath "$STROM_BIN")" != "$(realpath -m "$HERE/.cache/queue-strom")" ]; then
  cp "$STROM_BIN" "$HERE/.cache/queue-strom" || exit 2
  STROM_BIN="$HERE/.cache/queue-strom"
fi
KAFKA_LIB="${KAFKA_LIB:-}"
for d in "$HERE/.cache/lib44" "$REPO/compat-tests/.cache/lib44"; do
  [ -z "$KAFKA_LIB" ] && [ -f "$d/kafka_2.13-4.4.0.jar" ] && [ -f "$d/kafka-clients-4.4.0.jar" ] && KAFKA_LIB="$d"
done
if [ -z "$KAFKA_LIB" ]; then
  log "fetching the Kafka 4.4.0 jars (bash compat-tests/install.sh java)"
  bash "$REPO/compat-tests/install.sh" java || exit 2
  KAFKA_LIB="$REPO/compat-tests/.cache/lib44"
fi
CLASSES="$HERE/.cache/queue-classes"
rm -rf "$CLASSES" && mkdir -p "$CLASSES"
javac -nowarn -d "$CLASSES" -cp "$KAFKA_LIB/*" "$HERE/java/QueueBench.java" >"$OUT/javac.log" 2>&1 \
  || { log "javac failed (see $OUT/javac.log)"; cat "$OUT/javac.log" >&2; exit 2; }

# The whole run is bounded: 3 rounds take ~5 min; a stuck run is stopped after 40 min.
timeout 2400 python3 "$HERE/queue.py" --strom "$STROM_BIN" --kafka-lib "$KAFKA_LIB" \
  --classes "$CLASSES" --pidfile "$PIDFILE" --out "$OUT" "$@" &
DRIVER_PID=$!
wait "$DRIVER_PID"
RC=$?
DRIVER_PID=
if [ -f "$OUT/QUEUE_RESULTS.md" ] && [ "$OUT/QUEUE_RESULTS.md" -nt "$OUT/.started" ]; then
  cp "$OUT/QUEUE_RESULTS.md" "$HERE/QUEUE_RESULTS.md"
  log "wrote benches/QUEUE_RESULTS.md"
fi
[ "$RC" = 0 ] || { log "exit $RC (see $OUT/logs/)"; exit 1; }
