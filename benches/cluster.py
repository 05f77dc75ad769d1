#!/usr/bin/env python3
"""Three-node Strom against three-node Apache Kafka 4.4.0 on this machine: replicated produce
(replication factor 3, min.insync.replicas 2, acks=all) with Kafka's ProducerPerformance, the
brokers' CPU per GB, and failover time (kill -9 of partition 0's leader -> the first acks=all
acknowledgement after it, seen by a librdkafka producer writing to that partition).

Usage (from benches/cluster.sh, which finds the binaries and jars):
  cluster.py --strom BIN --kafka-lib DIR --python PY --out DIR [--records N] [--rounds R]
Writes DIR/CLUSTER_RESULTS.md (copied to benches/ by cluster.sh) and raw logs under DIR.
Every process it starts is stopped by PID; ports are free loopback ports.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
RECORD = 1024
PARTITIONS = 6
PERF_RE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")

PROBE = r'''
import sys, time, json
from confluent_kafka import Producer
boot, topic, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
acks = []
p = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True,
              "linger.ms": 0, "message.timeout.ms": 60000, "request.timeout.ms": 5000,
              "metadata.max.age.ms": 1000})
def cb(err, msg):
    if err is None:
        acks.append(time.time())
end = time.time() + secs
while time.time() < end:
    p.produce(topic, value=b"x" * 100, partition=0, on_delivery=cb)
    p.poll(0.005)
p.flush(60)
print(json.dumps(acks))
'''


def free_ports(n):
    """n distinct free loopback ports (all held while picked: one after another, the kernel may
    hand the same port out twice)."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class Cluster:
    def __init__(self, kind, args, out):
        self.kind, self.args, self.out = kind, args, out
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-cluster-", dir=os.environ.get("BENCH_TMP"))
        ports = free_ports(6)
        self.ports, self.cports = ports[:3], ports[3:]
        self.procs = [None, None, None]
        self.voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(self.cports))
        self.java = ["java", "-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC",
                     "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                     "-Djava.awt.headless=true",
                     f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2.properties')}",
                     "-cp", os.path.join(args.kafka_lib, "*")]
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        for i in range(3):
            props = self.props(i)
            with open(props, "w") as f:
                f.write(self.properties(i))
            if kind == "kafka":
                subprocess.run(self.java + ["kafka.tools.StorageTool", "format",
                                            f"--cluster-id={cluster_id}", "-c", props],
                               check=True, capture_output=True, timeout=120)

    def props(self, i):
        return os.path.join(self.dir, f"node{i + 1}.properties")

    def properties(self, i):
        common = f"""process.roles=broker,controller
node.id={i + 1}
controller.quorum.voters={self.voters}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:{self.ports[i]},CONTROLLER://127.0.0.1:{self.cports[i]}
log.dirs={self.dir}/data{i + 1}
default.replication.factor=3
min.insync.replicas=2
group.initial.rebalance.delay.ms=0
"""
        if self.kind == "strom":
            return common + "strom.admin.listener=\n"
        return common + f"""advertised.listeners=PLAINTEXT://127.0.0.1:{self.ports[i]}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
"""

    def start(self, i):
        log = open(os.path.join(self.out, f"{self.kind}-node{i + 1}.log"), "a")
        if self.kind == "strom":
            cmd = [self.args.strom, "--config", self.props(i)]
            env = dict(os.environ, RUST_LOG="info,openraft=warn", NO_COLOR="1")
        else:
            cmd = self.java + ["kafka.Kafka", self.props(i)]
            env = os.environ
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def start_all(self):
        for i in range(3):
            self.start(i)
        deadline = time.time() + 120
        while time.time() < deadline:
            if len(self.live_brokers()) == 3:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.kind}: the cluster did not come up")

    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for i, p in enumerate(self.ports) if self.procs[i])

    def tool(self, main, *argv, timeout=600):
        r = subprocess.run(self.java[:1] + ["-Xmx512M"] + self.java[-3:] + [main, *argv],
                           capture_output=True, text=True, timeout=timeout)
        return r.stdout + r.stderr

    def live_brokers(self):
        out = self.tool("org.apache.kafka.tools.BrokerApiVersionsCommand",
                        "--bootstrap-server", self.bootstrap(), timeout=60)
        return set(re.findall(r"\(id: (\d+) rack", out))

    def describe(self, topic):
        out = self.tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
                        self.bootstrap(), "--describe", "--topic", topic)
        parts = {}
        for m in re.finditer(r"Partition: (\d+)\s+Leader: (-?\d+)\s+Replicas: ([\d,]+)\s+Isr: ([\d,]*)", out):
            parts[int(m.group(1))] = (int(m.group(2)), m.group(4))
        return parts

    def create_topic(self, topic):
        self.tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", self.bootstrap(),
                  "--create", "--topic", topic, "--partitions", str(PARTITIONS),
                  "--replication-factor", "3")
        deadline = time.time() + 60
        while time.time() < deadline:
            parts = self.describe(topic)
            if len(parts) == PARTITIONS and all(len(isr.split(",")) == 3 for _, isr in parts.values()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.kind}: topic {topic} not fully in sync")

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs if p)

    def kill9(self, i):
        p = self.procs[i]
        if p:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            self.procs[i] = None

    def stop(self):
        for i, p in enumerate(self.procs):
            if p:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
                self.procs[i] = None
        shutil.rmtree(self.dir, ignore_errors=True)


def produce(c, args):
    topic = "bench"
    c.create_topic(topic)
    cpu0, t0 = c.cpu(), time.time()
    out = c.tool("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                 "--num-records", str(args.records), "--record-size", str(RECORD),
                 "--throughput", "-1", "--command-property", f"bootstrap.servers={c.bootstrap()}",
                 "acks=all", "linger.ms=5", "batch.size=65536")
    cpu = c.cpu() - cpu0
    with open(os.path.join(c.out, f"{c.kind}-producer.txt"), "a") as f:
        f.write(out)
    m = None
    for line in out.splitlines():
        m = PERF_RE.search(line) or m
    if not m:
        raise RuntimeError(f"{c.kind}: no ProducerPerformance summary:\n{out[-2000:]}")
    gb = args.records * RECORD / 1e9
    return dict(mb_s=float(m.group(3)) * 1.048576, p99_ms=int(m.group(8)),
                cpu_s_per_gb=cpu / gb, wall_s=time.time() - t0)


def failover(c, args):
    topic = "failover"
    c.create_topic(topic)
    leader = c.describe(topic)[0][0]
    probe = subprocess.Popen([args.python, "-c", PROBE, c.bootstrap(), topic, "12"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(4)
    killed = time.time()
    c.kill9(leader - 1)
    out, _ = probe.communicate(timeout=120)
    acks = json.loads(out.strip().splitlines()[-1])
    after = [t for t in acks if t > killed + 0.05]
    if not after:
        raise RuntimeError(f"{c.kind}: no acknowledgement after the kill")
    return dict(failover_s=after[0] - killed, leader=leader)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--kafka-lib", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = {"strom": [], "kafka": []}
    for r in range(args.rounds):
        order = ["strom", "kafka"] if r % 2 == 0 else ["kafka", "strom"]
        for kind in order:
            c = Cluster(kind, args, args.out)
            try:
                c.start_all()
                row = produce(c, args)
                row.update(failover(c, args))
            finally:
                c.stop()
            row["round"] = r + 1
            rows[kind].append(row)
            print(f"[cluster bench] round {r + 1} {kind}: {row}", file=sys.stderr, flush=True)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("mb_s", "p99_ms", "cpu_s_per_gb", "failover_s")}
           for k, v in rows.items()}
    lines = [
        "# Three-node cluster: Strom against Apache Kafka 4.4.0",
        "",
        f"Generated by `bash benches/cluster.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"Three brokers of each on this machine (all of them broker and controller, loopback), "
        f"a topic of {PARTITIONS} partitions with replication factor 3 and min.insync.replicas=2. "
        f"Produce: Kafka's ProducerPerformance, {args.records:,} records of {RECORD} B, acks=all, "
        "linger.ms=5, batch.size=65536, unthrottled; CPU is the three brokers' user+system time per GB "
        "produced. Failover: a librdkafka producer (acks=all, idempotent) writes to partition 0; its "
        "leader is killed with SIGKILL and the time to the next acknowledgement is measured. "
        "Both run their defaults (Strom: strom.acks.all.fsync=true, every in-sync replica fsyncs "
        "before an acks=all answer; Kafka: no fsync; both broker.session.timeout.ms=9000). "
        f"{args.rounds} rounds, brokers started afresh each time, order alternating.",
        "",
        "| | Strom | Kafka | Strom / Kafka |",
        "|---|---|---|---|",
        f"| produce MB/s (median) | {med['strom']['mb_s']:.1f} | {med['kafka']['mb_s']:.1f} | {med['strom']['mb_s'] / med['kafka']['mb_s']:.2f}x |",
        f"| produce p99 ms | {med['strom']['p99_ms']:.0f} | {med['kafka']['p99_ms']:.0f} | {med['strom']['p99_ms'] / max(med['kafka']['p99_ms'], 1):.2f}x |",
        f"| broker CPU s per GB | {med['strom']['cpu_s_per_gb']:.2f} | {med['kafka']['cpu_s_per_gb']:.2f} | {med['strom']['cpu_s_per_gb'] / med['kafka']['cpu_s_per_gb']:.2f}x |",
        f"| failover s (kill -9 of a leader) | {med['strom']['failover_s']:.2f} | {med['kafka']['failover_s']:.2f} | {med['strom']['failover_s'] / med['kafka']['failover_s']:.2f}x |",
        "",
        "Per round:",
        "",
        "| round | broker | MB/s | p99 ms | CPU s/GB | failover s (leader killed) |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("strom", "kafka"):
        for x in rows[kind]:
            lines.append(f"| {x['round']} | {kind} | {x['mb_s']:.1f} | {x['p99_ms']} | "
                         f"{x['cpu_s_per_gb']:.2f} | {x['failover_s']:.2f} (node {x['leader']}) |")
    lines.append("")
    with open(os.path.join(args.out, "CLUSTER_RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
