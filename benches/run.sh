#!/usr/bin/env bash
# Strom side by side with Apache Kafka 4.4.0, measured with Kafka's own load generators
# (ProducerPerformance, ConsumerPerformance, EndToEndLatency) and a librdkafka one of ours.
# Writes benches/RESULTS.md (raw output under benches/.out/).
#
#   bash benches/run.sh [--quick] [--rounds N] [--no-build] [--no-profile]
#
#   --quick       small record counts, 2 rounds (~8 min); the default is the full run (5 rounds, <30 min)
#   --rounds N    measured rounds (each starts every broker afresh, order alternating)
#   --no-build    use the existing target/release/strom and rdkafka_load binaries
#   --no-profile  skip the perf profile of Strom under produce load
#   --tls         instead: TLS next to plaintext (benches/tls.py -> benches/TLS_RESULTS.md;
#                 2 rounds of 500,000 records, ~10 min; with --quick 100,000)
# Env: STROM_BIN (a prebuilt broker), KAFKA_LIB (a directory of Kafka 4.4.0 jars),
#      BENCH_TMP (where broker data dirs go; default: $TMPDIR or /tmp).
# Exit: 0 ok, 1 a measurement failed (see RESULTS.md), 2 setup error.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
CACHE="$HERE/.cache"
OUT="$HERE/.out"
mkdir -p "$CACHE/run" "$OUT"
PIDFILE="$CACHE/run/pids"
: >"$PIDFILE"

cleanup() {
  # Stop every process this run started (brokers, load generators, perf), by PID only.
  [ -n "${HARNESS_PID:-}" ] && kill -TERM "$HARNESS_PID" 2>/dev/null
  if [ -s "$PIDFILE" ]; then
    while read -r pid; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; done <"$PIDFILE"
    sleep 2
    while read -r pid; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; done <"$PIDFILE"
    : >"$PIDFILE"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ARGS=() BUILD=1 PROG=harness.py
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) PROG=tls.py ;;
    --quick|--no-profile) ARGS+=("$1") ;;
    --rounds) ARGS+=("$1" "$2"); shift ;;
    --rounds=*) ARGS+=("--rounds" "${1#*=}") ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
for tool in java python3 cargo; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done

# (a) Strom release build + our librdkafka load generator (a bench target, harness = false).
STROM_BIN="${STROM_BIN:-$REPO/target/release/strom}"
if [ "$BUILD" = 1 ]; then
  log "building Strom (release) and benches/rdkafka_load"
  (cd "$REPO" && cargo build --release --bin strom) >"$OUT/build.log" 2>&1 \
    || { log "cargo build failed (see $OUT/build.log)"; tail -20 "$OUT/build.log" >&2; exit 2; }
  (cd "$REPO" && cargo bench --no-run --bench rdkafka_load --message-format=json) \
    >"$OUT/build-load.json" 2>>"$OUT/build.log" \
    || { log "building rdkafka_load failed (see $OUT/build.log)"; exit 2; }
fi
LOAD_BIN="$(python3 - "$OUT/build-load.json" <<'EOF'
import json, sys
exe = ""
try:
    for line in open(sys.argv[1]):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "rdkafka_load" \
                and m.get("executable"):
            exe = m["executable"]
except OSError:
    pass
print(exe)
EOF
)"
[ -x "$STROM_BIN" ] || { log "no Strom binary at $STROM_BIN"; exit 2; }
[ -n "$LOAD_BIN" ] && [ -x "$LOAD_BIN" ] || { log "no rdkafka_load binary (run without --no-build once)"; exit 2; }

# (b) Apache Kafka 4.4.0 jars, kept in our own cache (benches/.cache/lib44): copied from
# compat-tests' Maven cache when that is complete (it is rebuilt in place by compat-tests'
# install, so the run must not read it directly), else fetched with our pom.
have_jars() {
  [ -f "$1/kafka_2.13-4.4.0.jar" ] && [ -f "$1/kafka-tools-4.4.0.jar" ] && [ -f "$1/kafka-clients-4.4.0.jar" ] \
    && [ -f "$1/log4j-core-2.24.3.jar" ] && [ -f "$1/log4j-slf4j2-impl-2.24.3.jar" ] && [ -f "$1/slf4j-api-2.0.17.jar" ]
}
KAFKA_LIB="${KAFKA_LIB:-}"
if [ -z "$KAFKA_LIB" ]; then
  KAFKA_LIB="$CACHE/lib44"
  if ! have_jars "$KAFKA_LIB"; then
    rm -rf "$KAFKA_LIB.tmp"
    if have_jars "$REPO/compat-tests/.cache/lib44"; then
      log "copying Apache Kafka 4.4.0 jars from compat-tests/.cache/lib44"
      mkdir -p "$KAFKA_LIB.tmp" && cp "$REPO/compat-tests/.cache/lib44/"*.jar "$KAFKA_LIB.tmp/"
    fi
    if ! have_jars "$KAFKA_LIB.tmp"; then
      command -v mvn >/dev/null || { log "no Kafka jars and no mvn"; exit 2; }
      log "fetching Apache Kafka 4.4.0 jars from Maven Central"
      rm -rf "$KAFKA_LIB.tmp"
      (cd "$HERE" && mvn -q -B -Dmaven.repo.local="$CACHE/m2" -DoutputDirectory="$KAFKA_LIB.tmp" \
          -DincludeScope=runtime dependency:copy-dependencies) >"$OUT/mvn.log" 2>&1 \
        || { log "mvn failed (see $OUT/mvn.log)"; tail -20 "$OUT/mvn.log" >&2; exit 2; }
    fi
    rm -rf "$KAFKA_LIB" && mv "$KAFKA_LIB.tmp" "$KAFKA_LIB"
  fi
fi
have_jars "$KAFKA_LIB" || { log "Kafka jars incomplete in $KAFKA_LIB"; exit 2; }
log "Kafka jars: $KAFKA_LIB"

# (c) the measured rounds and the report.
python3 "$HERE/$PROG" --strom "$STROM_BIN" --load "$LOAD_BIN" --kafka-lib "$KAFKA_LIB" \
  --pidfile "$PIDFILE" --out "$OUT" "${ARGS[@]}" &
HARNESS_PID=$!
wait "$HARNESS_PID"
rc=$?
HARNESS_PID=""
exit $rc
