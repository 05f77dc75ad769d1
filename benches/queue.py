#!/usr/bin/env python3
"""Share groups (KIP-932 queues): Strom against Apache Kafka 4.4.0 on this machine, one broker at
a time, with three KafkaShareConsumer threads (kafka-clients 4.4, explicit acknowledgement,
every record ACCEPTed, commitSync after every poll). Driven by benches/queue.sh.

Per round, each broker is started afresh (harness.py's make_strom / make_kafka: free loopback
ports, temp data dir; Kafka single-node KRaft with internal topics at replication factor 1)
and measured on:
  drain-1p / drain-6p  a topic of 1 or 6 partitions holding RECORDS records of 100 B, produced
                       before the consumers start (group config share.auto.offset.reset=earliest
                       set with IncrementalAlterConfigs): records/s from the first poll to the
                       last acknowledgement, broker CPU s per million records over that window,
                       broker RSS at its end
  latency              6 partitions, a producer at RATE records/s (2 s warm-up, then SECONDS s
                       measured) while the 3 consumers consume: acknowledgement time minus send
                       time, p50/p99/max
Writes OUT/QUEUE_RESULTS.md (queue.sh copies it to benches/) and OUT/queue.json.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (Broker, make_strom, make_kafka, machine_info, busy_processes)

SIZE = 100
ANALYSIS_MARKER = harness.ANALYSIS_MARKER
CONSUMERS = 3
WARMUP_S = 2


def log(msg):
    print(f"[queue bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, args):
        self.args = args
        self.ctx = harness.Ctx(types.SimpleNamespace(
            pidfile=args.pidfile, out=args.out, kafka_lib=args.kafka_lib, load="", strom=args.strom))
        self.java = ["java", "-Xmx1G", "-server", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                     f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2.properties')}",
                     "-cp", f"{args.classes}:{os.path.join(args.kafka_lib, '*')}", "QueueBench"]

    def bench(self, label, log_name, timeout, *argv):
        cmd = self.java + [str(a) for a in argv]
        out = self.ctx.run(label, cmd, timeout, log_name, settle=False)
        return harness.last_json(out)

    def measure(self, kind, rnd):
        a = self.args
        ctx = self.ctx
        b = harness.make_strom(ctx, "strom") if kind == "strom" else harness.make_kafka(ctx, "kafka")
        row = {"round": rnd, "busy": harness.busy_processes(a.pidfile)}
        try:
            b.start()
            time.sleep(2)
            row["idle_rss_mib"] = harness.status_kb(b.pid, "VmRSS") / 1024
            common = ["--bootstrap", b.bootstrap, "--broker-pid", b.pid, "--hz", harness.TICK]
            for parts in (1, 6):
                topic, group = f"q{parts}", f"g{parts}"
                p = self.bench(f"produce {parts}p", f"{kind}-queue.log", 300, "produce",
                               *common, "--topic", topic, "--group", group, "--partitions", parts,
                               "--records", a.records, "--size", SIZE)
                row.setdefault("share_version", p.get("share_version"))
                row[f"produce_{parts}p_s"] = p["produce_s"]
                row[f"rss_after_produce_{parts}p_mib"] = harness.status_kb(b.pid, "VmRSS") / 1024
                # Write back the produced data first, so the drain does not compete with it.
                os.sync()
                d = self.bench(f"drain {parts}p", f"{kind}-queue.log", 300, "drain",
                               *common, "--topic", topic, "--group", group, "--partitions", parts,
                               "--records", a.records, "--consumers", CONSUMERS, "--timeout", 150)
                row[f"drain_{parts}p"] = d
                row[f"hwm_after_drain_{parts}p_mib"] = harness.status_kb(b.pid, "VmHWM") / 1024
                log(f"  {kind} drain {parts}p: {d['records_per_s']:,.0f} records/s, "
                    f"{d['broker_cpu_s_per_m']:.2f} CPU s/M, RSS {d['broker_rss_mib']:.0f} MiB, "
                    f"redelivered {d['redelivered']}, commit errors {d['commit_errors']}, "
                    f"per consumer {d['per_consumer']}")
            os.sync()
            lat = self.bench("latency", f"{kind}-queue.log", 240, "latency",
                             *common, "--topic", "lat", "--group", "glat", "--partitions", 6,
                             "--consumers", CONSUMERS, "--rate", a.rate, "--seconds", a.seconds,
                             "--warmup", WARMUP_S, "--size", SIZE)
            row["latency"] = lat
            log(f"  {kind} latency: p50 {lat['ack_p50_ms']:.1f} ms, p99 {lat['ack_p99_ms']:.1f} ms, "
                f"max {lat['ack_max_ms']:.1f} ms ({lat['measured_accepted']}/{lat['measured']})")
            row["peak_rss_mib"] = harness.status_kb(b.pid, "VmHWM") / 1024
        finally:
            b.stop()
            b.remove_data()
        return row


def med(rows, f):
    vals = [v for v in (f(r) for r in rows) if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=None):
    if v is None:
        return "—"
    if digits is not None:
        return f"{v:,.{digits}f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(s, k):
    if s is None or k is None or k == 0:
        return "—"
    return f"{s / k:.2f}x"


def get(r, *path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


def write_report(args, runner, rows, errors, info, started):
    lines = []
    a = lines.append
    a("# Share groups (queues): Strom against Apache Kafka 4.4.0")
    a("")
    a(f"Generated by `bash benches/queue.sh{' ' + ' '.join(args.passthrough) if args.passthrough else ''}` on "
      f"{time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started))} "
      f"({(time.time() - started) / 60:.1f} min).")
    a("")
    a(f"- commit `{info['commit']}`" + (" plus uncommitted changes in src/ or Cargo.* (the working "
                                         "tree was measured): `" + info["dirty"].replace("\n", "`, `") + "`"
                                         if info["dirty"] else " (clean src/)"))
    a(f"- machine: {info['nproc']} cores ({info['cpu']}), {info['mem_gib']} GiB RAM, Linux "
      f"{info['kernel']}; {info['java']}; {info['rustc']}")
    busy = [(kind, r["round"], r["busy"]) for kind in rows for r in rows[kind] if r.get("busy")]
    if busy:
        a("- **machine was busy**: processes this run did not start used >10% of a core when "
          + ", ".join(f"round {rnd} {kind} [{' '.join(sorted(set(b)))}]" for kind, rnd, b in busy)
          + " began; those figures are noisier")
    else:
        a("- no other process used >10% of a core at the start of any broker run")
    sv = {kind: sorted({str(r.get("share_version")) for r in rows[kind]}) for kind in rows}
    a(f"- {args.rounds} round(s); per round each broker is started afresh (temp data dir, free "
      "127.0.0.1 port), one at a time, order alternating; the clients run on the same 2 cores. "
      f"Strom: `strom --data-dir <tmp> --listen 127.0.0.1:<port>`, defaults. Kafka: `kafka.Kafka` "
      "single-node KRaft formatted with `--standalone` (4.4's default features, share.version="
      f"{'/'.join(sv.get('kafka', []))} as the client's DescribeFeatures reads it; Strom advertises "
      f"{'/'.join(sv.get('strom', []))}), internal topics at replication factor 1, the JVM flags of "
      "kafka-server-start.sh (-Xmx1G -Xms1G, G1), otherwise defaults (no fsync; Strom's defaults "
      "answer acks=all after fsync)")
    a(f"- drain rows: a topic of 1 or 6 partitions; {args.records:,} records of {SIZE} B produced "
      "first (kafka-clients producer defaults: acks=all, linger.ms=5, batch.size=16384; record i "
      "to partition i mod N), then sync(2); group config `share.auto.offset.reset=earliest` set "
      "with Admin.incrementalAlterConfigs before. Then 3 `KafkaShareConsumer` threads in one JVM, "
      "one share group, `share.acknowledgement.mode=explicit`, otherwise client defaults "
      "(max.poll.records 500): poll(100 ms), acknowledge(record, ACCEPT) for each record, "
      "**commitSync** after every poll that returned records; a record counts when the "
      "commitSync result for its partition carries no error. records/s = records / (return of "
      "the commitSync that accepted the last record − first poll call), so it includes joining "
      "the group. Broker CPU = its utime+stime (/proc/<pid>/stat) over the same window, per "
      "million records; RSS = its VmRSS at the end of that window")
    a(f"- latency row: a topic of 6 partitions, the same 3 consumers join first (the harness waits "
      "until DescribeShareGroups shows 3 members whose assignments cover all 6 partitions), then "
      f"one producer (acks=all, linger.ms=0) sends {args.rate:,} records/s on a fixed schedule, "
      f"{WARMUP_S} s warm-up (not counted) then {args.seconds} s measured "
      f"({args.rate * args.seconds:,} records); each value carries System.nanoTime() at send. "
      "**Latency = return of the commitSync that accepted the record − its send time** (same "
      "JVM, same clock); the poll-return latency is listed too")
    a("")
    rs, rk = rows.get("strom", []), rows.get("kafka", [])
    table = [
        ("3 share consumers on 1 partition: records/s", lambda r: get(r, "drain_1p", "records_per_s"), 0, "high"),
        ("  records/s from the first record delivered (without joining)", lambda r: get(r, "drain_1p", "records_per_s_from_first_record"), 0, "high"),
        ("  broker CPU s per million records", lambda r: get(r, "drain_1p", "broker_cpu_s_per_m"), 2, "low"),
        ("  broker RSS MiB", lambda r: get(r, "drain_1p", "broker_rss_mib"), 0, "low"),
        ("3 share consumers on 6 partitions: records/s", lambda r: get(r, "drain_6p", "records_per_s"), 0, "high"),
        ("  records/s from the first record delivered (without joining)", lambda r: get(r, "drain_6p", "records_per_s_from_first_record"), 0, "high"),
        ("  broker CPU s per million records", lambda r: get(r, "drain_6p", "broker_cpu_s_per_m"), 2, "low"),
        ("  broker RSS MiB", lambda r: get(r, "drain_6p", "broker_rss_mib"), 0, "low"),
        (f"delivery latency at {args.rate:,}/s (ack − send), p50 ms", lambda r: get(r, "latency", "ack_p50_ms"), 1, "low"),
        ("  p99 ms", lambda r: get(r, "latency", "ack_p99_ms"), 1, "low"),
        ("  max ms", lambda r: get(r, "latency", "ack_max_ms"), 1, "low"),
        ("  (poll return − send) p50 ms", lambda r: get(r, "latency", "poll_p50_ms"), 1, "low"),
        ("  (poll return − send) p99 ms", lambda r: get(r, "latency", "poll_p99_ms"), 1, "low"),
        ("  broker CPU, cores, during the measured seconds", lambda r: get(r, "latency", "broker_cpu_cores"), 2, "low"),
        ("broker RSS MiB idle (2 s after start)", lambda r: r.get("idle_rss_mib"), 0, "low"),
        ("broker peak RSS MiB (VmHWM, end of run)", lambda r: r.get("peak_rss_mib"), 0, "low"),
    ]
    a(f"Medians over {args.rounds} round(s)" + (" (min–max in brackets)" if args.rounds > 1 else "") + ":")
    a("")
    a("| | Strom | Kafka 4.4.0 | Strom / Kafka |")
    a("|---|---|---|---|")

    def cellv(rs_, f, d):
        vals = [v for v in (f(r) for r in rs_) if v is not None]
        if not vals:
            return "—", None
        m = statistics.median(vals)
        s = fmt(m, d)
        if len(vals) > 1:
            s += f" ({fmt(min(vals), d)}–{fmt(max(vals), d)})"
        return s, m

    for label, f, d, _ in table:
        s, sm = cellv(rs, f, d)
        k, km = cellv(rk, f, d)
        a(f"| {label} | {s} | {k} | {ratio(sm, km)} |")
    a("")
    a("Per run (what the clients saw; redelivered = records delivered with a delivery count > 1, "
      "after-accept = delivered again after an acknowledged ACCEPT, which must be 0):")
    a("")
    a("| round | broker | row | accepted | wall s | first record s | redelivered | after-accept | commit errors | max commitSync ms | per consumer | errors |")
    a("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind in ("strom", "kafka"):
        for r in rows.get(kind, []):
            for key, name in (("drain_1p", "1 partition"), ("drain_6p", "6 partitions"), ("latency", "latency")):
                x = r.get(key)
                if not x:
                    continue
                wall = x.get("wall_s")
                a(f"| {r['round']} | {kind} | {name} | {x['accepted']:,}/{x['records']:,} | "
                  f"{fmt(wall) if wall is not None else '—'} | "
                  f"{fmt(x.get('first_record_s')) if x.get('first_record_s') is not None else fmt(x.get('join_s'))} | "
                  f"{x['redelivered']} | {x['delivered_after_accept']} | {x['commit_errors']} | "
                  f"{fmt(x['max_commit_ms'])} | {x['per_consumer']} | "
                  f"{'; '.join(x['errors'])[:300] or '—'} |")
    a("")
    a("(For the latency row \"first record s\" is the time the 3 members took to join.)")
    if errors:
        a("")
        a("Errors:")
        a("")
        for e in errors:
            a(f"- {e}")
    a("")
    a("Commands (ports and paths are per run):")
    a("")
    a("```")
    for label, cmd in runner.ctx.commands.items():
        a(f"# {label}")
        a(harness.sh(cmd))
    a("```")
    a("")
    # Hand-written notes below the marker in benches/QUEUE_RESULTS.md survive a rewrite.
    try:
        with open(os.path.join(HERE, "QUEUE_RESULTS.md")) as f:
            old = f.read()
        if ANALYSIS_MARKER in old:
            lines.append(ANALYSIS_MARKER + old.split(ANALYSIS_MARKER, 1)[1].rstrip("\n"))
            lines.append("")
    except OSError:
        pass
    path = os.path.join(args.out, "QUEUE_RESULTS.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--kafka-lib", required=True)
    ap.add_argument("--classes", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--only", choices=["strom", "kafka"])
    args = ap.parse_args()
    # the options as given, for the report's command line
    argv = sys.argv[1:]
    args.passthrough = []
    for i, x in enumerate(argv):
        if x in ("--records", "--rounds", "--rate", "--seconds", "--only") and i + 1 < len(argv):
            args.passthrough += [x, argv[i + 1]]
    shutil.rmtree(os.path.join(args.out, "logs"), ignore_errors=True)
    os.makedirs(os.path.join(args.out, "logs"))
    started = time.time()
    info = harness.machine_info()
    runner = Runner(args)
    rows, errors = {"strom": [], "kafka": []}, []
    for rnd in range(1, args.rounds + 1):
        order = ["strom", "kafka"] if rnd % 2 == 1 else ["kafka", "strom"]
        for kind in order:
            if args.only and kind != args.only:
                continue
            log(f"round {rnd}: {kind}")
            try:
                row = runner.measure(kind, rnd)
                rows[kind].append(row)
            except Exception as e:  # noqa: BLE001
                log(f"round {rnd} {kind}: {e}")
                errors.append(f"round {rnd} {kind}: {e}")
            with open(os.path.join(args.out, "queue.json"), "w") as f:
                json.dump({"rows": rows, "errors": errors, "machine": info}, f, indent=1)
    write_report(args, runner, rows, errors, info, started)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
