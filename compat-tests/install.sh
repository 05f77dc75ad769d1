#!/usr/bin/env bash
# Installs every pinned client (and the Apache Kafka broker jars) into compat-tests/.cache/.
# Idempotent: each part writes a stamp holding the hash of the files that pin it and is
# skipped while the stamp matches. Usage: install.sh [part...]   parts: java java39 python go node kcat
# A part that fails is reported and leaves its stamp absent; the run marks its cells as errors.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${COMPAT_CACHE:-$HERE/.cache}"
mkdir -p "$CACHE/stamps" "$CACHE/bin" "$CACHE/logs"
PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(java java41 java39 python go node kcat)

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# stamp_ok NAME FILES... -> 0 if the stamp matches the hash of FILES
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
stamp_ok() { local n=$1; shift; [ -f "$CACHE/stamps/$n" ] && [ "$(cat "$CACHE/stamps/$n")" = "$(hash_of "$@")" ]; }
stamp_set() { local n=$1; shift; hash_of "$@" >"$CACHE/stamps/$n"; }

MVN=(mvn -q -B -Dmaven.repo.local="$CACHE/m2")

# java: the Apache Kafka 4.4.0 broker, the 4.4 clients and tools (.cache/lib44) and our scenario
# classes, compiled against 4.4.0 (.cache/java-build).
install_java() {
  local files=("$HERE/java/pom.xml" $(find "$HERE/java/src" -type f | sort))
  if stamp_ok java "${files[@]}" && [ -f "$CACHE/java-build/compat-scenarios-0.1.0.jar" ] && [ -d "$CACHE/lib44" ]; then log "java: cached"; return 0; fi
  log "java: resolving kafka 4.4.0 jars + building scenarios"
  rm -rf "$CACHE/lib44"
  # -Dcompat.build.dir: the classes go into this cache, so an install into another COMPAT_CACHE
  # cannot rewrite the classes a running suite is loading.
  (cd "$HERE/java" && "${MVN[@]}" -DoutputDirectory="$CACHE/lib44" -DincludeScope=runtime \
      -Dcompat.build.dir="$CACHE/java-build" package dependency:copy-dependencies) >"$CACHE/logs/java.log" 2>&1 \
    || { log "java: FAILED (see $CACHE/logs/java.log)"; tail -20 "$CACHE/logs/java.log" >&2; return 1; }
  stamp_set java "${files[@]}"
}

# java41: kafka-clients / kafka-tools 4.1.1 (.cache/lib41), the java-4.1 and kafka-cli columns.
install_java41() {
  if stamp_ok java41 "$HERE/java41/pom.xml" && [ -d "$CACHE/lib41" ]; then log "java41: cached"; return 0; fi
  log "java41: resolving kafka-clients / kafka-tools 4.1.1"
  rm -rf "$CACHE/lib41"
  (cd "$HERE/java41" && "${MVN[@]}" -DoutputDirectory="$CACHE/lib41" dependency:copy-dependencies) \
      >"$CACHE/logs/java41.log" 2>&1 || { log "java41: FAILED"; tail -20 "$CACHE/logs/java41.log" >&2; return 1; }
  stamp_set java41 "$HERE/java41/pom.xml"
}

install_java39() {
  if stamp_ok java39 "$HERE/java39/pom.xml" && [ -d "$CACHE/lib39" ]; then log "java39: cached"; return 0; fi
  log "java39: resolving kafka-clients 3.9.1"
  rm -rf "$CACHE/lib39"
  (cd "$HERE/java39" && "${MVN[@]}" -DoutputDirectory="$CACHE/lib39" dependency:copy-dependencies) \
      >"$CACHE/logs/java39.log" 2>&1 || { log "java39: FAILED"; tail -20 "$CACHE/logs/java39.log" >&2; return 1; }
  stamp_set java39 "$HERE/java39/pom.xml"
}

install_python() {
  if stamp_ok python "$HERE/python/requirements.txt" && [ -x "$CACHE/venv/bin/python" ]; then log "python: cached"; return 0; fi
  log "python: venv + pinned requirements"
  rm -rf "$CACHE/venv"
  { python3 -m venv "$CACHE/venv" && "$CACHE/venv/bin/pip" install -q --cache-dir "$CACHE/pip" \
      -r "$HERE/python/requirements.txt"; } >"$CACHE/logs/python.log" 2>&1 \
    || { log "python: FAILED"; tail -20 "$CACHE/logs/python.log" >&2; return 1; }
  stamp_set python "$HERE/python/requirements.txt"
}

install_go() {
  local files=("$HERE/go/go.mod" "$HERE/go/go.sum" $(find "$HERE/go" -name '*.go' | sort))
  if stamp_ok go "${files[@]}" && [ -x "$CACHE/bin/franz-driver" ] && [ -x "$CACHE/bin/sarama-driver" ]; then log "go: cached"; return 0; fi
  log "go: building franz-go and sarama drivers"
  (cd "$HERE/go" && export GOMODCACHE="$CACHE/gomod" GOFLAGS="-modcacherw -buildvcs=false" GOCACHE="$CACHE/gobuild" &&
    go build -o "$CACHE/bin/franz-driver" ./cmd/franz && go build -o "$CACHE/bin/sarama-driver" ./cmd/sarama) \
      >"$CACHE/logs/go.log" 2>&1 || { log "go: FAILED"; tail -20 "$CACHE/logs/go.log" >&2; return 1; }
  stamp_set go "${files[@]}"
}

install_node() {
  if stamp_ok node "$HERE/node/package.json" "$HERE/node/package-lock.json" && [ -d "$CACHE/node/node_modules/kafkajs" ]; then log "node: cached"; return 0; fi
  log "node: npm ci (kafkajs)"
  rm -rf "$CACHE/node" && mkdir -p "$CACHE/node"
  cp "$HERE/node/package.json" "$HERE/node/package-lock.json" "$CACHE/node/"
  (cd "$CACHE/node" && npm ci --no-audit --no-fund --cache "$CACHE/npm" --loglevel=error) >"$CACHE/logs/node.log" 2>&1 \
    || { log "node: FAILED"; tail -20 "$CACHE/logs/node.log" >&2; return 1; }
  stamp_set node "$HERE/node/package.json" "$HERE/node/package-lock.json"
}

install_kcat() {
  if command -v kcat >/dev/null 2>&1; then log "kcat: present ($(command -v kcat))"; return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then log "kcat: no apt-get; kcat cells will be errors"; return 1; fi
  log "kcat: apt-get install"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; } >"$CACHE/logs/kcat.log" 2>&1 \
    || { log "kcat: FAILED (see $CACHE/logs/kcat.log); kcat cells will be errors"; return 1; }
}

rc=0
for p in "${PARTS[@]}"; do
  start=$(date +%s)
  "install_$p" || rc=1
  log "$p: done in $(( $(date +%s) - start ))s"
done
exit $rc
