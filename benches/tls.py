"""TLS next to plaintext, Strom and Apache Kafka 4.4.0 side by side; driven by benches/tls.sh.

Each broker is started with a PLAINTEXT and an SSL listener from the same Kafka properties
(a PEM keystore made here with openssl: RSA 2048 broker certificate signed by a test CA), and
Kafka's own ProducerPerformance (acks=1) and ConsumerPerformance run over each listener in
turn. Broker CPU is utime+stime of its process over the load. Rounds alternate the broker
order. Writes benches/TLS_RESULTS.md.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import harness
from harness import RECORD, Broker, cpu_seconds, free_port, log

LISTENERS = ("PLAINTEXT", "SSL")


def make_pki(d):
    def run(*cmd):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=bench-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "b.key", "-out", "b.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "b.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "b.crt", "-days", "2", "-extfile", "ext.cnf")
    run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", "b.key", "-out", "b.p8")
    with open(os.path.join(d, "broker.pem"), "w") as f:
        f.write(open(os.path.join(d, "b.p8")).read() + open(os.path.join(d, "b.crt")).read())
    with open(os.path.join(d, "client.properties"), "w") as f:
        f.write(f"security.protocol=SSL\nssl.truststore.type=PEM\n"
                f"ssl.truststore.location={d}/ca.pem\n")


def security_props(d, plain, ssl):
    return (f"listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl}\n"
            f"ssl.keystore.type=PEM\nssl.keystore.location={d}/broker.pem\n")


def start(ctx, target, pki):
    workdir = tempfile.mkdtemp(prefix=f"{target}-tls-bench-", dir=harness.bench_tmp())
    plain, ssl = free_port(), free_port()
    log_path = os.path.join(ctx.out, "logs", f"tls-{target}.log")
    if target == "strom":
        props = os.path.join(workdir, "server.properties")
        with open(props, "w") as f:
            f.write(security_props(pki, plain, ssl) + f"log.dirs={workdir}/data\n"
                    "strom.admin.listener=\n")
        cmd = [ctx.strom, "--config", props]
        b = Broker(ctx, target, workdir, plain, cmd, log_path)
    else:
        cport = free_port()
        # make_kafka's server.properties with both listeners (the later keys win in Java's
        # Properties): the same security lines as Strom's.
        b = harness.make_kafka(ctx, target, security_props(pki, plain, ssl)
                               + f"listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},"
                               f"CONTROLLER://127.0.0.1:{cport}\n"
                               f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},"
                               f"SSL://127.0.0.1:{ssl}\n"
                               "listener.security.protocol.map=CONTROLLER:PLAINTEXT,"
                               "PLAINTEXT:PLAINTEXT,SSL:SSL\n"
                               f"controller.quorum.bootstrap.servers=127.0.0.1:{cport}\n")
        b.port, b.bootstrap = plain, f"127.0.0.1:{plain}"
    b.ports = {"PLAINTEXT": plain, "SSL": ssl}
    return b


def measure(ctx, target, pki, records, rnd, results):
    b = start(ctx, target, pki)
    lg = f"tls-{target}-r{rnd}.log"
    try:
        b.start()
        for listener in LISTENERS:
            boot = f"127.0.0.1:{b.ports[listener]}"
            extra = ["--command-config", os.path.join(pki, "client.properties")] if listener == "SSL" else []
            topic = f"t-{listener.lower()}"
            ctx.run("create topic", ctx.rd("create", b.bootstrap, topic=topic, partitions=6), 180,
                    lg, settle=False)
            c0 = cpu_seconds(b.pid)
            out = ctx.run(f"ProducerPerformance {listener}", ctx.java_tool(
                "ProducerPerformance", "--topic", topic, "--num-records", str(records),
                "--record-size", str(RECORD), "--throughput", "-1", "--command-property",
                f"bootstrap.servers={boot}", "acks=1", "linger.ms=5", "batch.size=131072",
                *extra), 900, lg)
            r = harness.parse_producer_perf(out)
            cpu = cpu_seconds(b.pid) - c0
            gb = r["records"] * RECORD / 1e9
            results.setdefault((target, listener, "produce_mb_s"), []).append(r["mb_per_s"])
            results.setdefault((target, listener, "produce_cpu_s_per_gb"), []).append(cpu / gb)
            c0 = cpu_seconds(b.pid)
            out = ctx.run(f"ConsumerPerformance {listener}", ctx.java_tool(
                "ConsumerPerformance", "--bootstrap-server", boot, "--topic", topic,
                "--num-records", str(records), "--timeout", "30000", *extra), 900, lg)
            r = harness.parse_consumer_perf(out)
            cpu = cpu_seconds(b.pid) - c0
            results.setdefault((target, listener, "consume_mb_s"), []).append(r["mb_per_s"])
            results.setdefault((target, listener, "consume_cpu_s_per_gb"), []).append(
                cpu / (r["records"] * RECORD / 1e9))
    finally:
        b.stop()
        b.remove_data()


def report(results, records, rounds, path):
    def med(k):
        v = results.get(k)
        return statistics.median(v) if v else None

    rows = [("produce_mb_s", "produce MB/s (acks=1)", True),
            ("produce_cpu_s_per_gb", "broker CPU s/GB produced", False),
            ("consume_mb_s", "consume MB/s", True),
            ("consume_cpu_s_per_gb", "broker CPU s/GB consumed", False)]
    lines = [
        "# TLS next to plaintext: Strom vs Apache Kafka 4.4.0",
        "",
        f"Generated by `bash benches/run.sh --tls` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{rounds} rounds, median shown; {records:,} records of {RECORD} B per load, 6 partitions, "
        "Kafka's ProducerPerformance (acks=1, linger.ms=5, batch.size=131072) then "
        "ConsumerPerformance, over the PLAINTEXT listener and then the SSL listener of the same "
        "broker (TLS 1.3, RSA 2048 certificate; the client is the Java client on JDK TLS). "
        "Broker CPU = utime+stime of the broker process over the load. 2-core machine: the load "
        "generator competes with the broker, so CPU per GB is the fairer comparison. Each broker "
        "is started fresh per round and each load is 0.5 GB, so Kafka's figures include its JIT "
        "warm-up (benches/RESULTS.md has the longer steady-state plaintext runs).",
        "",
        "| metric | listener | Strom | Kafka | Strom/Kafka |",
        "|---|---|---|---|---|",
    ]
    for key, label, higher in rows:
        for listener in LISTENERS:
            s, k = med(("strom", listener, key)), med(("kafka", listener, key))
            ratio = f"{s / k:.2f}x" if s and k else "-"
            fs = f"{s:.2f}" if s is not None else "-"
            fk = f"{k:.2f}" if k is not None else "-"
            lines.append(f"| {label} | {listener} | {fs} | {fk} | {ratio} |")
    lines.append("")
    for target in ("strom", "kafka"):
        pp = med((target, "PLAINTEXT", "consume_cpu_s_per_gb"))
        tt = med((target, "SSL", "consume_cpu_s_per_gb"))
        if pp and tt:
            lines.append(f"- {target}: TLS costs {tt / pp:.1f}x the broker CPU per GB consumed of "
                         f"plaintext ({tt:.2f} vs {pp:.2f} s/GB).")
    lines.append("")
    lines.append("Raw samples: " + ", ".join(
        f"{t}/{l}/{k}={['%.2f' % x for x in v]}" for (t, l, k), v in sorted(results.items())))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--kafka-lib", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-profile", action="store_true")  # run.sh's flag; nothing to profile here
    args = ap.parse_args()
    if args.quick:
        args.records = 100_000
    ctx = harness.Ctx(args)
    os.makedirs(os.path.join(ctx.out, "logs"), exist_ok=True)
    pki = tempfile.mkdtemp(prefix="tls-bench-pki-", dir=harness.bench_tmp())
    make_pki(pki)
    results = {}
    for rnd in range(args.rounds):
        order = ("strom", "kafka") if rnd % 2 == 0 else ("kafka", "strom")
        for target in order:
            log(f"round {rnd + 1}: {target}")
            measure(ctx, target, pki, args.records, rnd, results)
    report(results, args.records, args.rounds, os.path.join(harness.HERE, "TLS_RESULTS.md"))
    log("wrote benches/TLS_RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
