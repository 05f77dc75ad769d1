"""Runs the client x scenario matrix against Apache Kafka and/or Strom, writes
results/<target>.json, RESULTS.md and FINDINGS.md, and enforces the ratchet.
Invoked by run.sh (which installs the clients first); see README.md."""

import argparse
import concurrent.futures
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brokers  # noqa: E402
import report  # noqa: E402
from scenarios import CACHE, CLIENT_IDS, CLIENTS, HERE, OAUTH_SCENARIOS, QUICK_CLIENTS, SCENARIO, SCENARIO_IDS, SECURITY_AREA  # noqa: E402

RESULTS_DIR = os.path.join(HERE, "results")
RATCHET = os.path.join(HERE, "ratchet.txt")
MARK = "@@RESULT "


def log(msg):
    print(f"[compat {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def installed_parts():
    """Which install parts are usable (install.sh leaves a stamp only on success)."""
    stamps = os.path.join(CACHE, "stamps")
    ok = {p for p in ("java", "java41", "java39", "python", "go", "node") if os.path.exists(os.path.join(stamps, p))}
    if subprocess.run(["sh", "-c", "command -v kcat"], stdout=subprocess.DEVNULL).returncode == 0:
        ok.add("kcat")
    return ok


# Held cells that failed once and passed when run again: printed at the end of the run.
flaky, flaky_lock = [], threading.Lock()


def run_cell(target, broker, client, scenario, run_id, cell_log_dir):
    label, version, part, argv, _ = CLIENTS[client]
    topic = f"ct{run_id}-{client.replace('.', '')}-{scenario}"
    timeout_s = SCENARIO[scenario]["timeout"]
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(CACHE, "node", "node_modules")
    env["COMPAT_CACHE"] = CACHE
    env["COMPAT_TARGET"] = target
    # How many brokers the target is (the metadata scenario checks that many are listed).
    env["COMPAT_BROKERS"] = str(brokers.CLUSTER_NODES if target in CLUSTER_TARGETS else 1)
    env["PYTHONUNBUFFERED"] = "1"
    env["KAFKAJS_NO_PARTITIONER_WARNING"] = "1"
    # The security listeners' addresses and the client certificate files (brokers.security_env).
    security = getattr(broker, "security", None)
    if security and scenario in OAUTH_SCENARIOS and not security.get("oauth"):
        # Security listeners but no OAUTHBEARER one: Strom with COMPAT_STROM_OAUTH=0.
        why = brokers.STROM_NO_OAUTH if target in STROM_TARGETS else f"{target} has no OAUTHBEARER listener"
        return {"client": client, "scenario": scenario, "status": "not_yet", "detail": why, "obs": {}, "duration_s": 0}
    if security:
        env["COMPAT_SECURITY"] = json.dumps(security)
    elif SCENARIO[scenario]["area"] == SECURITY_AREA:
        # No security listeners on this broker: Strom with COMPAT_STROM_SECURITY=0 (not yet),
        # the clusters (not configured with them), or a Kafka whose certificates failed (fail).
        why = getattr(broker, "security_error", None) or f"{target} has no security listeners (single-node targets only)"
        return {"client": client, "scenario": scenario, "status": "fail" if why.startswith("harness:") else "not_yet",
                "detail": why, "obs": {}, "duration_s": 0}
    cmd = argv + [scenario, broker.bootstrap, topic]
    log_path = os.path.join(cell_log_dir, f"{client}.{scenario}.log")
    start = time.monotonic()
    with open(log_path, "w") as lf:
        lf.write("$ " + " ".join(cmd) + "\n")
        lf.flush()
        # own process group so a timed-out driver and its children (JVM, kcat) go together
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=lf, stdin=subprocess.DEVNULL,
                                env=env, cwd=HERE, start_new_session=True, text=True)
        brokers.record_pid(proc.pid)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
        brokers.forget_pid(proc.pid)
        lf.write("--- stdout ---\n" + (out or ""))
    dur = round(time.monotonic() - start, 1)
    res = None
    for line in (out or "").splitlines()[::-1]:
        if line.startswith(MARK):
            try:
                res = json.loads(line[len(MARK):])
            except json.JSONDecodeError:
                pass
            break
    if res is None:
        tail = ""
        try:
            with open(log_path) as f:
                lines = [l.strip() for l in f if l.strip() and not l.startswith("$ ")]
            tail = " | ".join(lines[-3:])[-300:]
        except OSError:
            pass
        why = f"timed out after {timeout_s}s" if timed_out else f"driver exited {proc.returncode} without a result"
        res = {"status": "fail", "detail": f"{why}: {tail}", "obs": {}}
    res.setdefault("obs", {})
    res.setdefault("detail", "")
    if res.get("status") not in ("pass", "fail", "n/a", "not_yet"):
        res = {"status": "fail", "detail": f"bad status {res.get('status')!r}", "obs": res.get("obs", {})}
    return {"client": client, "scenario": scenario, "status": res["status"],
            "detail": str(res["detail"])[:600], "obs": res["obs"], "duration_s": dur}


class TargetRun:
    """One target's broker plus its lifecycle: restart after a crash, stop at the end."""

    def __init__(self, target, log_dir, build_strom):
        self.target, self.log_dir, self.build = target, log_dir, build_strom
        self.broker, self.start_error, self.restarts = None, None, 0
        self.lock = threading.Lock()
        self.binary = None

    def start(self):
        try:
            if self.target == "kafka":
                self.broker = brokers.start_kafka(self.log_dir)
            elif self.target == "kafka3":
                self.broker = brokers.start_kafka_cluster(self.log_dir)
            else:
                if self.binary is None:
                    self.binary, err = brokers.build_strom(self.log_dir, self.build)
                    if err:
                        raise RuntimeError(err)
                if self.target == "strom3":
                    self.broker = brokers.start_strom_cluster(self.log_dir, self.binary)
                else:
                    self.broker = brokers.start_strom(self.log_dir, self.binary)
            self.start_error = None
        except Exception as e:  # noqa: BLE001 - any start failure becomes the cells' reason
            self.broker, self.start_error = None, str(e)
        return self.start_error

    def ensure_alive(self):
        """Called before each cell; restarts a crashed broker (at most 5 times per target)."""
        with self.lock:
            if self.broker is not None and self.broker.alive():
                return None
            if self.broker is not None:
                code = self.broker.proc.returncode
                self.broker.stop()
                self.broker = None
                if self.restarts >= 5:
                    self.start_error = f"broker exited (code {code}); restart budget used up"
                    return self.start_error
                self.restarts += 1
                log(f"{self.target}: broker died (code {code}); restarting ({self.restarts})")
                err = self.start()
                return f"broker had crashed (code {code}) before this cell and was restarted" if err is None else err
            return self.start_error or "broker not started"

    def stop(self):
        if self.broker:
            self.broker.stop()


def run_target(target, clients, scenarios, args, run_id):
    log_dir = os.path.join(CACHE, "logs", "run", target)
    cell_log_dir = os.path.join(log_dir, "cells")
    os.makedirs(cell_log_dir, exist_ok=True)
    t0 = time.monotonic()
    tr = TargetRun(target, log_dir, build_strom=not args.no_build)
    log(f"{target}: starting broker")
    err = tr.start()
    if err:
        log(f"{target}: broker did not start: {err}")
    else:
        log(f"{target}: broker up at {tr.broker.bootstrap}")
    parts = installed_parts()
    budget_end = t0 + args.target_budget_s
    cells = []
    cells_lock = threading.Lock()
    held = read_ratchet() if target in STROM_TARGETS else set()

    def client_job(client):
        out = []
        part = CLIENTS[client][2]
        for scn in [s for s in CLIENTS[client][4] if s in scenarios]:
            if part not in parts:
                out.append(dict(client=client, scenario=scn, status="fail", obs={}, duration_s=0,
                                detail=f"harness: client not installed (install part '{part}' failed)"))
                continue
            if time.monotonic() > budget_end:
                out.append(dict(client=client, scenario=scn, status="fail", obs={}, duration_s=0,
                                detail=f"not run: target time budget of {args.target_budget_s}s used up"))
                continue
            why = tr.ensure_alive()
            if tr.broker is None:
                out.append(dict(client=client, scenario=scn, status="fail", obs={}, duration_s=0,
                                detail=f"broker unavailable: {why}"))
                continue
            if not brokers.api_versions_ok(tr.broker.port, timeout_s=5):
                out.append(dict(client=client, scenario=scn, status="fail", obs={}, duration_s=0,
                                detail="broker does not answer ApiVersions v0 (probe before the cell)"))
                continue
            cell = run_cell(target, tr.broker, client, scn, run_id, cell_log_dir)
            if cell["status"] == "fail" and (target, client, scn) in held:
                # A held cell that fails is run once more (fresh topic and group): a regression
                # fails again and turns CI red; a cell that passes the second time is printed
                # as FLAKY at the end with its first failure, and its first log is kept.
                first = cell
                keep = os.path.join(cell_log_dir, f"{client}.{scn}.first-attempt.log")
                os.replace(os.path.join(cell_log_dir, f"{client}.{scn}.log"), keep)
                log(f"{target} FAIL {client:16s} {scn:22s} {first['duration_s']:5.1f}s {first['detail'][:110]} (held: retrying once)")
                cell = run_cell(target, tr.broker, client, scn, f"{run_id}r", cell_log_dir)
                if cell["status"] == "pass":
                    cell["flaky"] = first["detail"][:300]
                    with flaky_lock:
                        flaky.append((target, client, scn, first["detail"], keep))
            if why:
                cell["detail"] = (cell["detail"] + f" [note: {why}]").strip()
            mark = {"pass": "ok  ", "fail": "FAIL", "n/a": "n/a ", "not_yet": "todo"}[cell["status"]]
            log(f"{target} {mark} {client:16s} {scn:22s} {cell['duration_s']:5.1f}s {cell['detail'][:110] if cell['status'] == 'fail' else ''}")
            out.append(cell)
        with cells_lock:
            cells.extend(out)

    try:
        jobs = args.jobs or (3 if target == "strom" else 2)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            list(ex.map(client_job, clients))
    finally:
        tr.stop()
    order = {c: i for i, c in enumerate(CLIENT_IDS)}
    sorder = {s: i for i, s in enumerate(SCENARIO_IDS)}
    cells.sort(key=lambda c: (order[c["client"]], sorder[c["scenario"]]))
    return {
        "target": target,
        "broker": BROKER_LABEL[target],
        "broker_start_error": err,
        "broker_restarts": tr.restarts,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "quick": args.quick,
        "duration_s": round(time.monotonic() - t0, 1),
        "clients": {c: client_version(c) for c in clients},
        "cells": cells,
    }


# The targets: single brokers, and three-node clusters (replication factor 3,
# min.insync.replicas 2) of each.
CLUSTER_TARGETS = ("kafka3", "strom3")
STROM_TARGETS = ("strom", "strom3")
BROKER_LABEL = {
    "kafka": "Apache Kafka 4.4.0 (KRaft, single node, Maven Central jars)",
    "strom": "Strom (target/release/strom)",
    "kafka3": "Apache Kafka 4.4.0 (KRaft, 3 nodes each broker and controller, replication factor 3, min.insync.replicas 2)",
    "strom3": "Strom (target/release/strom, 3 nodes each broker and quorum voter, replication factor 3, min.insync.replicas 2)",
}
TARGET_SETS = {"both": ["kafka", "strom"], "cluster": ["kafka3", "strom3"],
               "all": ["kafka", "strom", "kafka3", "strom3"]}


def user_args(argv):
    """The command line as the user gave it to run.sh (without the flags run.sh adds)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--install-s", "--install-kind"):
            skip = True
            continue
        out.append(a)
    return out


def client_version(client):
    """The pinned version; for kcat (from Debian, not pinned by us) what is installed."""
    if client == "kcat":
        r = subprocess.run(["dpkg-query", "-W", "-f=kcat ${Version}", "kcat"], capture_output=True, text=True)
        lib = subprocess.run(["dpkg-query", "-W", "-f=librdkafka ${Version}", "librdkafka1"], capture_output=True, text=True)
        if r.returncode == 0:
            return f"{r.stdout} ({lib.stdout or 'librdkafka ?'}, Debian)"
    return CLIENTS[client][1]


def git_commit():
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    return r.stdout.strip() or "(no commit)"


def merge_into(path, fresh):
    """A filtered run (--quick/--clients) updates only the cells it ran; the rest stay."""
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        ran = {(c["client"], c["scenario"]) for c in fresh["cells"]}
        kept = [c for c in old.get("cells", []) if (c["client"], c["scenario"]) not in ran
                and c["client"] in CLIENTS and c["scenario"] in SCENARIO]
        if kept:
            fresh = dict(fresh)
            fresh["cells"] = fresh["cells"] + kept
            fresh["clients"] = {**old.get("clients", {}), **fresh["clients"]}
            fresh["partial_run"] = True
            order = {c: i for i, c in enumerate(CLIENT_IDS)}
            sorder = {s: i for i, s in enumerate(SCENARIO_IDS)}
            fresh["cells"].sort(key=lambda c: (order[c["client"]], sorder[c["scenario"]]))
    with open(path, "w") as f:
        json.dump(fresh, f, indent=1, sort_keys=False)
        f.write("\n")


def tail(path, n):
    """The last n lines of a log, colour codes removed ([] when it cannot be read)."""
    import re
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in lines[-n:]]


def read_ratchet(excluded=False):
    """Held cells as (target, client, scenario); with excluded=True, the cells listed with a
    leading '-' instead (known to flip, never held, kept with their reason across rewrites)."""
    cells = set()
    if os.path.exists(RATCHET):
        with open(RATCHET) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if not line or line.startswith("-") != excluded:
                    continue
                t, c, s = line.lstrip("-").split()
                cells.add((t, c, s))
    return cells


def excluded_lines():
    if not os.path.exists(RATCHET):
        return []
    with open(RATCHET) as f:
        return [l.rstrip("\n") for l in f if l.startswith("-")]


def write_ratchet(strom_result, target="strom"):
    old = read_ratchet()
    ran = {(target, c["client"], c["scenario"]) for c in strom_result["cells"]}
    keep = {x for x in old if x not in ran}
    now = {(target, c["client"], c["scenario"]) for c in strom_result["cells"] if c["status"] == "pass"}
    now -= read_ratchet(excluded=True)
    excl = excluded_lines()
    order = {c: i for i, c in enumerate(CLIENT_IDS)}
    sorder = {s: i for i, s in enumerate(SCENARIO_IDS)}
    lines = sorted(keep | now, key=lambda x: (STROM_TARGETS.index(x[0]) if x[0] in STROM_TARGETS else 9,
                                              order.get(x[1], 99), sorder.get(x[2], 99)))
    with open(RATCHET, "w") as f:
        f.write("# Cells that passed against Strom and must keep passing (target client scenario).\n"
                "# Rewritten by `bash compat-tests/run.sh --update-ratchet`; run.sh fails if one regresses.\n"
                "# Lines starting with '-' are cells never held (known to flip); they survive rewrites.\n")
        for line in excl:
            f.write(line + "\n")
        for t, c, s in lines:
            f.write(f"{t} {c} {s}\n")
    return len(lines)


def on_sigterm(signum, frame):
    """Stop everything this run started (drivers' process groups, brokers), then exit."""
    try:
        with open(brokers.PIDFILE) as f:
            pids = [int(p) for p in f.read().split() if p.strip()]
    except (OSError, ValueError):
        pids = []
    for pid in pids:
        for kill in (lambda: os.killpg(pid, signal.SIGTERM), lambda: os.kill(pid, signal.SIGTERM)):
            try:
                kill()
                break
            except OSError:
                pass
    time.sleep(3)
    for pid in pids:
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
                break
            except OSError:
                pass
    print(f"[compat] stopped by signal {signum}; killed {len(pids)} started process(es)", flush=True)
    os._exit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="both",
                    choices=["strom", "kafka", "both", "strom3", "kafka3", "cluster", "all"])
    ap.add_argument("--clients", default="")
    ap.add_argument("--scenarios", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--update-ratchet", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--strict-kafka", action="store_true")
    ap.add_argument("--jobs", type=int, default=int(os.environ["COMPAT_JOBS"]) if os.environ.get("COMPAT_JOBS") else None,
                    help="clients run in parallel (default: 2 against Kafka, 3 against Strom, whose failing cells mostly wait)")
    ap.add_argument("--target-budget-s", type=int, default=int(os.environ.get("COMPAT_TARGET_BUDGET_S", "1080")))
    ap.add_argument("--install-s", type=float, default=None)
    ap.add_argument("--install-kind", default="")
    args = ap.parse_args()

    clients = [c.strip() for c in args.clients.split(",") if c.strip()] or (QUICK_CLIENTS if args.quick else CLIENT_IDS)
    bad = [c for c in clients if c not in CLIENTS]
    if bad:
        sys.exit(f"unknown client(s) {bad}; known: {', '.join(CLIENT_IDS)}")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()] or \
        [s for s in SCENARIO_IDS if SCENARIO[s]["quick"] or not args.quick]
    bad = [s for s in scenarios if s not in SCENARIO]
    if bad:
        sys.exit(f"unknown scenario(s) {bad}; known: {', '.join(SCENARIO_IDS)}")
    targets = TARGET_SETS.get(args.target, [args.target])
    run_id = format(int(time.time()) % (36 ** 5), "x")
    os.makedirs(RESULTS_DIR, exist_ok=True)

    t0 = time.monotonic()
    results = {}
    for target in targets:
        res = run_target(target, clients, scenarios, args, run_id)
        results[target] = res
        merge_into(os.path.join(RESULTS_DIR, f"{target}.json"), res)
        n = {k: sum(1 for c in res["cells"] if c["status"] == k) for k in ("pass", "fail", "n/a", "not_yet")}
        log(f"{target}: {n['pass']} pass, {n['fail']} fail, {n['n/a']} n/a, {n['not_yet']} not yet in {res['duration_s']}s")
    total_s = round(time.monotonic() - t0 + (args.install_s or 0), 1)

    timings_path = os.path.join(RESULTS_DIR, "timings.json")
    timings = {}
    if os.path.exists(timings_path):
        with open(timings_path) as f:
            timings = json.load(f)
    whole = args.target in ("both", "cluster")
    full = not args.quick and not args.clients and not args.scenarios and whole
    quick = args.quick and not args.clients and not args.scenarios and whole
    key = ("full" if full else "quick" if quick else "partial") + ("-" + args.install_kind if args.install_kind else "")
    if args.target == "cluster":
        key += "-cluster"
    timings[key] = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "install_s": args.install_s, "total_s": total_s,
                    "targets": {t: results[t]["duration_s"] for t in results},
                    "args": " ".join(user_args(sys.argv[1:])) or "(defaults)"}
    if full or quick:  # filtered runs are not a measure of anything
        with open(timings_path, "w") as f:
            json.dump(timings, f, indent=1, sort_keys=True)
            f.write("\n")

    report.write_all(RESULTS_DIR, HERE)

    rc = 0
    for kt in ("kafka", "kafka3"):
        if kt not in results:
            continue
        kfail = [c for c in results[kt]["cells"] if c["status"] == "fail"]
        if kfail:
            print("\n" + "!" * 78)
            print(f"!! HARNESS BUG: {len(kfail)} cell(s) fail against Apache Kafka ({kt}) itself:")
            for c in kfail:
                print(f"!!   {c['client']:16s} {c['scenario']:22s} {c['detail'][:150]}")
            print("!" * 78 + "\n")
            if args.strict_kafka:
                rc = 3
    if flaky:
        print("\n" + "~" * 78)
        print(f"~~ FLAKY: {len(flaky)} held cell(s) failed once and passed when run again:")
        for t, c, s, d, keep in flaky:
            print(f"~~   {t} {c} {s}: {d[:200]}")
            print(f"~~     first attempt's log: {keep}")
            for line in tail(keep, 12):
                print(f"~~     | {line}")
        print("~" * 78 + "\n")
    for st in STROM_TARGETS:
        if st not in results:
            continue
        status = {(c["client"], c["scenario"]): c for c in results[st]["cells"]}
        held = [(t, c, s) for t, c, s in sorted(read_ratchet()) if t == st]
        regressed = [(c, s, status[(c, s)]["detail"]) for t, c, s in held
                     if (c, s) in status and status[(c, s)]["status"] != "pass"]
        if args.update_ratchet:
            n = write_ratchet(results[st], st)
            log(f"ratchet.txt rewritten: {n} cells")
        elif regressed:
            print(f"\nRATCHET: these {st} cells passed before and now fail:")
            log_dir = os.path.join(CACHE, "logs", "run", st)
            for c, s, d in regressed:
                print(f"  {st} {c} {s}: {d[:200]}")
                for line in tail(os.path.join(log_dir, "cells", f"{c}.{s}.log"), 15):
                    print(f"    | {line}")
            # The brokers' own warnings, for a CI log that is all one has afterwards.
            for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
                if name.endswith("-broker.log") or "-broker-" in name:
                    path = os.path.join(log_dir, name)
                    lines = [l for l in tail(path, 100000) if " WARN " in l or " ERROR " in l]
                    print(f"  {name}: {len(lines)} WARN/ERROR lines, the last {min(len(lines), 25)}:")
                    for line in lines[-25:]:
                        print(f"    | {line[:300]}")
            rc = 1
        else:
            log(f"ratchet: ok ({len(held)} {st} cells held)")
    log(f"done in {total_s}s (install {args.install_s}s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
