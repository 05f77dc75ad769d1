#!/usr/bin/env bash
# Strom compat-tests: install pinned clients, start the broker(s), run the client x scenario
# matrix, write RESULTS.md / FINDINGS.md / results/*.json and enforce the ratchet.
#
#   bash compat-tests/run.sh [--target strom|kafka|both] [--quick] [--clients java-4.1,franz-go,...]
#                            [--scenarios id,id] [--update-ratchet] [--no-build] [--strict-kafka]
#                            [--jobs N] [--skip-install]
# Exit: 0 ok; 1 a ratchet cell regressed; 3 an Apache Kafka cell failed (only with --strict-kafka);
#       2 usage or harness error.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${COMPAT_CACHE:-$HERE/.cache}"
export COMPAT_CACHE="$CACHE"
mkdir -p "$CACHE/run"
PIDFILE="$CACHE/run/pids"
: >"$PIDFILE"

cleanup() {
  # First the runner (it stops its own children on SIGTERM), then anything still recorded in the
  # pidfile (brokers, drivers), by PID only.
  if [ -n "${MATRIX_PID:-}" ] && kill -TERM "$MATRIX_PID" 2>/dev/null; then
    for _ in $(seq 1 20); do kill -0 "$MATRIX_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$MATRIX_PID" 2>/dev/null
  fi
  if [ -s "$PIDFILE" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done <"$PIDFILE"
    sleep 2
    while read -r pid; do
      [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done <"$PIDFILE"
    : >"$PIDFILE"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ARGS=() SKIP_INSTALL=0 TARGET=both CLIENTS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-install) SKIP_INSTALL=1 ;;
    --target) TARGET="$2"; ARGS+=("$1" "$2"); shift ;;
    --target=*) TARGET="${1#*=}"; ARGS+=("$1") ;;
    --clients|--scenarios|--jobs) [ "$1" = --clients ] && CLIENTS="$2"; ARGS+=("$1" "$2"); shift ;;
    --clients=*) CLIENTS="${1#*=}"; ARGS+=("$1") ;;
    --quick|--update-ratchet|--no-build|--strict-kafka|--scenarios=*|--jobs=*) ARGS+=("$1") ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

# Which install parts the chosen clients need.
want_parts() {
  local list="$1" quick="$2"
  if [ -z "$list" ]; then
    if [ "$quick" = 1 ]; then list="java-4.4,kafka-cli-4.4,confluent-kafka,franz-go,kafkajs"
    else list="java-4.4,java-4.1,java-3.9,kafka-cli-4.4,kafka-cli,kafka-streams-4.4,confluent-kafka,kcat,kafka-python,aiokafka,franz-go,sarama,kafkajs"; fi
  fi
  local parts=" java python "   # the Kafka 4.4 broker jars and the helper venv are always needed
  IFS=, read -ra cs <<<"$list"
  for c in "${cs[@]}"; do
    case "$c" in
      java-3.9) parts+="java39 " ;;
      java-4.1|kafka-cli) parts+="java41 " ;;
      kcat) parts+="kcat " ;;
      franz-go|sarama) parts+="go " ;;
      kafkajs) parts+="node " ;;
    esac
  done
  echo $parts | tr ' ' '\n' | sort -u | tr '\n' ' '
}
QUICK=0; for a in "${ARGS[@]}"; do [ "$a" = --quick ] && QUICK=1; done

INSTALL_S=0 KIND=warm
if [ $SKIP_INSTALL = 0 ]; then
  [ -d "$CACHE/stamps" ] && [ -n "$(ls -A "$CACHE/stamps" 2>/dev/null)" ] || KIND=cold
  t0=$(date +%s)
  # shellcheck disable=SC2046
  bash "$HERE/install.sh" $(want_parts "$CLIENTS" "$QUICK") || echo "[compat] some installs failed; their cells will fail with the reason" >&2
  INSTALL_S=$(( $(date +%s) - t0 ))
fi

python3 "$HERE/lib/matrix.py" "${ARGS[@]}" --install-s "$INSTALL_S" --install-kind "$KIND" &
MATRIX_PID=$!
wait $MATRIX_PID
rc=$?
MATRIX_PID=""
exit $rc
