#!/usr/bin/env bash
# Builds and runs every fuzz target for N seconds each (default 60), one after the other.
#
#   fuzz/run.sh [seconds]          FUZZ_TARGETS="record_batch log_append" fuzz/run.sh 30
#
# Prints `fuzz: <target> <execs> execs, no crash` per target; exits 1 if any target crashes
# (the reproducer is in fuzz/artifacts/<target>/, see fuzz/README.md), or if the targets do
# not build. cargo-fuzz is installed from crates.io when missing. A machine without a nightly
# toolchain or a C++ compiler (libFuzzer is C++), or where cargo-fuzz cannot be installed, prints
# `fuzz: skipped (<reason>)` and exits 0: a missing tool must not fail CI.
#
# libFuzzer limits:
#   -rss_limit_mb=2048    a real memory blow-up is a crash.
#   -malloc_limit_mb=2048 (libFuzzer's default is rss_limit_mb; spelled out on purpose) one
#                         malloc above this is reported as "out-of-memory (malloc(N))".
#                         strom's global allocator serves allocations >= 1 GiB (kafka-protocol's
#                         Vec::with_capacity from an untrusted array length) with
#                         mmap(MAP_NORESERVE) directly, never through malloc, so libFuzzer's
#                         malloc hooks do not see them and they cost no RSS until touched; only
#                         smaller allocations reach malloc, all below this limit. Lowering it
#                         under 1024 would flag lazily-mapped sub-GiB capacity claims that cost
#                         nothing either, so keep it >= 1024.
#   -timeout=10           an input running 10 s is a hang.
# The allocator guard is checked before fuzzing: the seed `seed-huge-array` (a 4-byte Metadata
# body claiming 2^31-1 topics) must run clean.
set -uo pipefail

secs="${1:-60}"
cd "$(dirname "$0")" || exit 1
targets=(${FUZZ_TARGETS:-frame_and_header record_batch log_append sasl_tokens})
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10)

skip() {
    echo "fuzz: skipped ($1)"
    exit 0
}
command -v cargo >/dev/null 2>&1 || skip "cargo not found"
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain: rustup toolchain install nightly"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    # cargo-fuzz comes from crates.io; a fresh machine (CI) installs it here.
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet >/tmp/strom-fuzz-install.$$ 2>&1 || {
        tail -n 20 /tmp/strom-fuzz-install.$$
        rm -f /tmp/strom-fuzz-install.$$
        skip "cargo-fuzz could not be installed: cargo install cargo-fuzz --locked"
    }
    rm -f /tmp/strom-fuzz-install.$$
fi
command -v c++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 ||
    skip "no C++ compiler for libFuzzer"

# Debug assertions and overflow checks are on (cargo-fuzz's default), with AddressSanitizer.
if ! cargo +nightly fuzz build; then
    echo "fuzz: build failed"
    exit 1
fi
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="target/$triple/release"

if ! "$bin_dir/frame_and_header" "${limits[@]}" corpus/frame_and_header/seed-huge-array >/tmp/strom-fuzz-guard.$$ 2>&1; then
    cat /tmp/strom-fuzz-guard.$$
    rm -f /tmp/strom-fuzz-guard.$$
    echo "fuzz: frame_and_header CRASH on seed-huge-array (is strom's guarded allocator the global allocator?)"
    exit 1
fi
rm -f /tmp/strom-fuzz-guard.$$
echo "fuzz: allocator guard ok (2^31-element claim in a 4-byte body ran clean)"

status=0
for t in "${targets[@]}"; do
    log="target/fuzz-$t.log"
    mkdir -p "corpus/$t" "artifacts/$t"
    # libFuzzer adds new inputs to the first corpus directory (git-ignored except seed-*).
    "$bin_dir/$t" "${limits[@]}" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "corpus/$t" >"$log" 2>&1
    rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ "$rc" -eq 0 ]; then
        echo "fuzz: $t ${execs:-?} execs, no crash"
    else
        status=1
        tail -n 40 "$log"
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        echo "fuzz: $t CRASH after ${execs:-?} execs (exit $rc; reproducer: fuzz/${artifact:-artifacts/$t/}; log: fuzz/$log)"
    fi
done
rm -rf /dev/shm/strom-fuzz-log-* 2>/dev/null
exit "$status"
