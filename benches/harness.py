"""Side-by-side measurement of Strom and Apache Kafka 4.4.0; driven by benches/run.sh.

Each round starts every target afresh on free loopback ports, one at a time, in alternating
order, and runs the same loads against it:

  strom        Strom with its defaults (acks=all is answered after fsync)
  kafka        Apache Kafka 4.4.0, single-node KRaft, its defaults (heap 1 GiB, no fsync)
  kafka-flush  Kafka with log.flush.interval.messages=1: the durability-parity row (produce only)
  strom-nofsync  Strom with strom.acks.all.fsync=false: acks=all answered from the page cache,
               as Kafka's default does (acks=all rows only)

Broker CPU comes from /proc/<pid>/stat (utime+stime), memory from /proc/<pid>/status
(VmRSS, VmHWM). Every process started here is recorded in the pidfile so run.sh's trap can
stop it by PID; data directories are temporary and removed after each target.
"""

import argparse
import base64
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ANALYSIS_MARKER = "<!-- analysis: hand-written, kept across runs -->"
REPO = os.path.dirname(HERE)
RECORD = 1024
TICK = os.sysconf("SC_CLK_TCK")

FULL = dict(rounds=5, produce=1_000_000, rate=5000, lat_records=40_000, e2e=2000,
            rd_produce=1_000_000, p1000=300_000, flush_rounds=99)
QUICK = dict(rounds=2, produce=100_000, rate=5000, lat_records=5_000, e2e=300,
             rd_produce=100_000, p1000=50_000, flush_rounds=1)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Ctx:
    def __init__(self, args):
        self.args = args
        self.pidfile = args.pidfile
        self.out = args.out
        self.lib = args.kafka_lib
        self.load = args.load
        self.strom = args.strom
        self.commands = {}  # label -> example command line (for the report)

    def record_pid(self, pid):
        with open(self.pidfile, "a") as f:
            f.write(f"{pid}\n")

    def forget_pid(self, pid):
        try:
            with open(self.pidfile) as f:
                pids = [p.strip() for p in f if p.strip() and p.strip() != str(pid)]
            with open(self.pidfile, "w") as f:
                f.write("".join(p + "\n" for p in pids))
        except FileNotFoundError:
            pass

    def run(self, label, cmd, timeout, log_name, settle=True):
        """Runs a load generator to completion; returns its stdout (stderr goes to a log).

        With `settle`, first writes back every dirty page (sync(2)), so no load runs while the
        kernel writes out the one before it: that writeback competes for the disk with a
        broker's fsyncs and made fsync tails differ 2x between otherwise equal runs."""
        self.commands.setdefault(label, cmd)
        if settle:
            t0 = time.monotonic()
            os.sync()
            if time.monotonic() - t0 > 0.5:
                log(f"  sync before {label}: {time.monotonic() - t0:.1f}s")
        err_path = os.path.join(self.out, "logs", log_name)
        os.makedirs(os.path.dirname(err_path), exist_ok=True)
        t0 = time.monotonic()
        with open(err_path, "a") as err:
            err.write(f"$ {' '.join(cmd)}\n")
            err.flush()
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                 text=True)
            self.record_pid(p.pid)
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                self.forget_pid(p.pid)
                raise RuntimeError(f"{label}: timed out after {timeout}s (log {err_path})")
            self.forget_pid(p.pid)
            err.write(out)
        log(f"  {label}: {time.monotonic() - t0:.1f}s")
        if p.returncode != 0:
            raise RuntimeError(f"{label}: exit {p.returncode} (log {err_path})")
        return out

    # Java tools: the heap kafka-producer-perf-test.sh / kafka-consumer-perf-test.sh set.
    def java_tool(self, cls, *args):
        return ["java", "-Xmx512M", "-server", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2.properties')}",
                "-cp", os.path.join(self.lib, "*"), f"org.apache.kafka.tools.{cls}", *args]

    def rd(self, mode, bootstrap, **kw):
        cmd = [self.load, mode, "--brokers", bootstrap]
        for k, v in kw.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        return cmd


# ---------------------------------------------------------------------------------- /proc

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def machine_busy_seconds():
    """CPU-seconds the whole machine spent not idle (all CPUs, from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice: busy = all but idle,
    # iowait, and guest time (already counted in user).
    return (sum(v[:8]) - v[3] - v[4]) / TICK


def children_seconds():
    """CPU-seconds of this harness's finished (waited-for) child processes."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def thread_cpu(pid):
    """{thread name: cpu seconds} summed over threads of the same name (digits folded)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        name = re.sub(r"\d+", "N", name)
        fields = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def busy_processes(pidfile, window_s=1.0):
    """Processes this run did not start that used more than 10% of a core over `window_s`
    (other engineers' compilers, test brokers, JVMs): a sign the figures are noisy."""
    mine = str(os.getpid())
    try:
        with open(pidfile) as f:
            ours = {p.strip() for p in f if p.strip()}
    except OSError:
        ours = set()

    def sample():
        cpu = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == mine or pid in ours:
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    raw = f.read()
                fields = raw.rsplit(")", 1)[1].split()
                cpu[pid] = (raw[raw.index("(") + 1:raw.rindex(")")],
                            (int(fields[11]) + int(fields[12])) / TICK)
            except (OSError, ValueError, IndexError):
                continue
        return cpu

    before = sample()
    time.sleep(window_s)
    after = sample()
    busy = []
    for pid, (comm, c1) in after.items():
        if pid in before and c1 - before[pid][1] > 0.1 * window_s:
            busy.append(comm)
    return sorted(busy)


# ---------------------------------------------------------------------------------- brokers

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def api_versions_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            body = struct.pack(">hhih", 18, 0, 7, 5) + b"bench"
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 10:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            corr, err = struct.unpack(">ih", buf[4:10])
            return corr == 7 and err == 0
    except (OSError, struct.error):
        return False


class Broker:
    def __init__(self, ctx, target, workdir, port, cmd, log_path):
        self.ctx, self.target, self.workdir, self.port = ctx, target, workdir, port
        self.cmd, self.log_path = cmd, log_path
        self.bootstrap = f"127.0.0.1:{port}"
        self.proc = None

    def start(self, deadline_s=120):
        """Starts the process; returns (ms to first accepted connection, ms to ApiVersions)."""
        log_f = open(self.log_path, "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=log_f, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        self.ctx.record_pid(self.proc.pid)
        accept_ms = None
        while time.monotonic() - t0 < deadline_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} exited with {self.proc.returncode} "
                                   f"(log {self.log_path})")
            if accepts(self.port):
                accept_ms = (time.monotonic() - t0) * 1000
                break
            time.sleep(0.001)
        if accept_ms is None:
            raise RuntimeError(f"{self.target} did not accept within {deadline_s}s")
        while time.monotonic() - t0 < deadline_s:
            if api_versions_ok(self.port):
                return accept_ms, (time.monotonic() - t0) * 1000
            time.sleep(0.002)
        raise RuntimeError(f"{self.target} did not answer ApiVersions within {deadline_s}s")

    @property
    def pid(self):
        return self.proc.pid

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.ctx.forget_pid(self.proc.pid)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self.ctx.forget_pid(self.proc.pid)

    def remove_data(self):
        shutil.rmtree(self.workdir, ignore_errors=True)


def bench_tmp():
    return os.environ.get("BENCH_TMP") or tempfile.gettempdir()


def make_strom(ctx, target):
    workdir = tempfile.mkdtemp(prefix="strom-bench-", dir=bench_tmp())
    port = free_port()
    cmd = [ctx.strom, "--data-dir", os.path.join(workdir, "data"), "--listen", f"127.0.0.1:{port}"]
    if target == "strom-nofsync":
        cmd += ["--set", "strom.acks.all.fsync=false"]
    ctx.commands.setdefault(f"broker: {target}", cmd)
    return Broker(ctx, target, workdir, port, cmd, os.path.join(ctx.out, "logs", f"{target}.log"))


def make_kafka(ctx, target, extra=""):
    workdir = tempfile.mkdtemp(prefix="kafka-bench-", dir=bench_tmp())
    port, cport = free_port(), free_port()
    while cport == port:
        cport = free_port()
    props = os.path.join(workdir, "server.properties")
    with open(props, "w") as f:
        f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={workdir}/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
{extra}""")
    # The JVM flags bin/kafka-server-start.sh uses (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS).
    java = ["java", "-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2.properties')}",
            "-cp", os.path.join(ctx.lib, "*")]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log_path = os.path.join(ctx.out, "logs", f"{target}.log")
    ctx.run("kafka-storage format",
            # `--cluster-id=ID`, not `-t ID`: a random id may start with '-' and then reads as an option.
            java + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", props,
                    "--standalone"], 120, f"{target}.log")
    cmd = java + ["kafka.Kafka", props]
    ctx.commands.setdefault(f"broker: {target}", cmd)
    return Broker(ctx, target, workdir, port, cmd, log_path)


# ---------------------------------------------------------------------------------- parsers

PERF_RE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def parse_producer_perf(out):
    m = None
    for line in out.splitlines():
        m = PERF_RE.search(line) or m
    if not m:
        raise RuntimeError("no ProducerPerformance summary line")
    rps = float(m.group(2))
    return dict(records=int(m.group(1)), records_per_s=rps, mb_per_s=rps * RECORD / 1e6,
                avg_ms=float(m.group(4)), max_ms=float(m.group(5)), p50_ms=int(m.group(6)),
                p95_ms=int(m.group(7)), p99_ms=int(m.group(8)), p999_ms=int(m.group(9)))


def parse_consumer_perf(out):
    lines = [l for l in out.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if line.startswith("start.time"):
            head = [h.strip() for h in line.split(",")]
            vals = [v.strip() for v in lines[i + 1].split(",")]
            row = dict(zip(head, vals))
            nmsg = float(row["data.consumed.in.nMsg"])
            fetch_rps = float(row["fetch.nMsg.sec"])
            return dict(records=nmsg, records_per_s=fetch_rps,
                        mb_per_s=fetch_rps * RECORD / 1e6,
                        rebalance_ms=float(row["rebalance.time.ms"]),
                        fetch_ms=float(row["fetch.time.ms"]))
    raise RuntimeError("no ConsumerPerformance result line")


def parse_e2e(out):
    avg = re.search(r"Avg latency: ([\d.]+) ms", out)
    pct = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", out)
    if not avg or not pct:
        raise RuntimeError("no EndToEndLatency summary")
    return dict(avg_ms=float(avg.group(1)), p50_ms=float(pct.group(1)),
                p99_ms=float(pct.group(2)), p999_ms=float(pct.group(3)))


def last_json(out):
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON result")


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


# ---------------------------------------------------------------------------------- one target

def producer_props(b, acks):
    # --command-property: 4.4's name (the old --producer-props prints a deprecation line)
    return ["--command-property", f"bootstrap.servers={b.bootstrap}", f"acks={acks}",
            "linger.ms=5", "batch.size=131072"]


def measure(ctx, target, p, rnd, results):
    """Runs the loads against one freshly started target; fills results[metric] = value.

    strom and kafka run every load; kafka-flush the produce loads; strom-nofsync the acks=all
    produce loads."""
    full = target in ("strom", "kafka")
    acks_levels = ("all",) if target == "strom-nofsync" else ("1", "all")
    log(f"round {rnd}: {target}")
    b = make_strom(ctx, target) if target.startswith("strom") else make_kafka(
        ctx, target, "log.flush.interval.messages=1\n" if target == "kafka-flush" else "")
    lg = f"{target}-r{rnd}.log"

    def put(key, value):
        results.setdefault(key, {}).setdefault(target, []).append(value)

    busy = busy_processes(ctx.pidfile)
    results.setdefault("_busy", []).append({"round": rnd, "target": target, "busy": busy,
                                            "loadavg": open("/proc/loadavg").read().split()[:3]})
    try:
        accept_ms, api_ms = b.start()
        if full:
            put("startup_accept_ms", accept_ms)
            put("startup_apiversions_ms", api_ms)
            time.sleep(3)
            put("idle_rss_mb", status_kb(b.pid, "VmRSS") / 1024)

        topics = [("p6-acks1", 6), ("p6-acksall", 6), ("p6-lat", 6)]
        if full:
            topics += [("e2e", 1), ("rd-p6", 6), ("rd-lat", 6)]
        for t, n in topics:
            ctx.run("create topic (rdkafka admin)", ctx.rd("create", b.bootstrap, topic=t,
                                                          partitions=n), 180, lg, settle=False)

        # Unthrottled produce: throughput and broker CPU per GB.
        for acks, topic in (("1", "p6-acks1"), ("all", "p6-acksall")):
            if acks not in acks_levels:
                continue
            c0 = cpu_seconds(b.pid)
            m0, g0 = machine_busy_seconds(), children_seconds()
            out = ctx.run(f"ProducerPerformance unthrottled acks={acks}", ctx.java_tool(
                "ProducerPerformance", "--topic", topic, "--num-records", str(p["produce"]),
                "--record-size", str(RECORD), "--throughput", "-1",
                *producer_props(b, acks)), 900, lg)
            r = parse_producer_perf(out)
            cpu = cpu_seconds(b.pid) - c0
            # Everything but the load generator: the broker plus the kernel work it causes in
            # other threads (page-cache writeback in kworkers, softirqs), which a broker that
            # does not fsync leaves outside its own process.
            machine = (machine_busy_seconds() - m0) - (children_seconds() - g0)
            gb = r["records"] * RECORD / 1e9
            put(f"produce_mb_s_acks{acks}", r["mb_per_s"])
            put(f"produce_cpu_s_per_gb_acks{acks}", cpu / gb)
            put(f"produce_machine_cpu_s_per_gb_acks{acks}", machine / gb)
            put(f"produce_p99_ms_unthrottled_acks{acks}", r["p99_ms"])

        if full:
            c0 = cpu_seconds(b.pid)
            out = ctx.run("ConsumerPerformance", ctx.java_tool(
                "ConsumerPerformance", "--bootstrap-server", b.bootstrap, "--topic", "p6-acks1",
                "--num-records", str(p["produce"]), "--timeout", "30000"), 900, lg)
            r = parse_consumer_perf(out)
            cpu = cpu_seconds(b.pid) - c0
            put("consume_mb_s", r["mb_per_s"])
            put("consume_cpu_s_per_gb", cpu / (r["records"] * RECORD / 1e9))

        # Fixed-rate produce: latency.
        for acks in acks_levels:
            out = ctx.run(f"ProducerPerformance fixed rate acks={acks}", ctx.java_tool(
                "ProducerPerformance", "--topic", "p6-lat", "--num-records",
                str(p["lat_records"]), "--record-size", str(RECORD), "--throughput",
                str(p["rate"]), *producer_props(b, acks)), 600, lg)
            r = parse_producer_perf(out)
            for k in ("avg_ms", "p50_ms", "p99_ms", "p999_ms"):
                put(f"lat_acks{acks}_{k}", r[k])

        # librdkafka fixed-rate latency (also for kafka-flush: the fsync-parity comparison).
        for acks in ("1", "all"):
            if full or acks == "all":
                if not full:
                    ctx.run("create topic (rdkafka admin)", ctx.rd(
                        "create", b.bootstrap, topic="rd-lat", partitions=6), 180, lg, settle=False)
                r = last_json(ctx.run(f"rdkafka_load fixed rate acks={acks}", ctx.rd(
                    "produce", b.bootstrap, topic="rd-lat", records=p["lat_records"],
                    acks=acks, rate=p["rate"]), 600, lg))
                for k in ("p50_us", "p99_us", "p999_us"):
                    put(f"rd_lat_acks{acks}_{k}", r["latency"][k])

        if not full:
            return

        out = ctx.run("EndToEndLatency", ctx.java_tool(
            "EndToEndLatency", "--bootstrap-server", b.bootstrap, "--topic", "e2e", "--num-records",
            str(p["e2e"]), "--producer-acks", "1", "--record-size", str(RECORD)), 600, lg)
        r = parse_e2e(out)
        for k in ("avg_ms", "p50_ms", "p99_ms", "p999_ms"):
            put(f"e2e_{k}", r[k])

        # librdkafka second opinion.
        c0 = cpu_seconds(b.pid)
        r = last_json(ctx.run("rdkafka_load produce unthrottled", ctx.rd(
            "produce", b.bootstrap, topic="rd-p6", records=p["rd_produce"], acks=1), 900, lg))
        cpu = cpu_seconds(b.pid) - c0
        put("rd_produce_mb_s", r["mb_per_s"])
        put("rd_produce_cpu_s_per_gb", cpu / (r["records"] * RECORD / 1e9))
        c0 = cpu_seconds(b.pid)
        r = last_json(ctx.run("rdkafka_load consume", ctx.rd(
            "consume", b.bootstrap, topic="rd-p6", records=p["rd_produce"]), 900, lg))
        cpu = cpu_seconds(b.pid) - c0
        put("rd_consume_mb_s", r["mb_per_s"])
        put("rd_consume_cpu_s_per_gb", cpu / (r["records"] * RECORD / 1e9))
        r = last_json(ctx.run("rdkafka_load e2e", ctx.rd(
            "e2e", b.bootstrap, topic="e2e", records=p["e2e"]), 600, lg))
        for k in ("p50_us", "p99_us", "p999_us"):
            put(f"rd_e2e_{k}", r["latency"][k])

        put("peak_rss_mb", status_kb(b.pid, "VmHWM") / 1024)

        # Partition scaling: the same unthrottled acks=1 produce over 1,000 partitions.
        ctx.run("create topic (rdkafka admin)", ctx.rd("create", b.bootstrap, topic="p1000",
                                                      partitions=1000), 300, lg, settle=False)
        out = ctx.run("ProducerPerformance 1000 partitions", ctx.java_tool(
            "ProducerPerformance", "--topic", "p1000", "--num-records", str(p["p1000"]),
            "--record-size", str(RECORD), "--throughput", "-1",
            *producer_props(b, "1")), 900, lg)
        put("p1000_produce_mb_s", parse_producer_perf(out)["mb_per_s"])
        put("peak_rss_1000p_mb", status_kb(b.pid, "VmHWM") / 1024)

        # Crash recovery: kill -9 with everything above on disk, restart, time to serving.
        data_dir = os.path.join(b.workdir, "data")
        put("recovery_log_gib", dir_bytes(data_dir) / 2**30)
        b.kill9()
        b.cmd = b.cmd  # same data dir, same port
        accept_ms, _ = b.start(deadline_s=600)
        t0 = time.monotonic()
        r = last_json(ctx.run("rdkafka_load ready (after kill -9)", ctx.rd(
            "ready", b.bootstrap, topic="p6-acks1", expect=p["produce"], timeout_ms=600000),
            660, lg, settle=False))
        put("recovery_accept_ms", accept_ms)
        put("recovery_serving_ms", accept_ms + (time.monotonic() - t0) * 1000)
    finally:
        b.stop()
        b.remove_data()


# ---------------------------------------------------------------------------------- profile

def profile_strom(ctx, p):
    """perf record plus a per-thread CPU split of Strom under the produce and consume loads."""
    prof = {}
    b = make_strom(ctx, "strom-profile")
    lg = "strom-profile.log"
    have_perf = shutil.which("perf") is not None

    def profiled(name, label, cmd):
        perf = None
        data = os.path.join(ctx.out, "perf-" + re.sub(r"\W+", "-", name) + ".data")
        if have_perf:
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "-g",
                                     "-p", str(b.pid), "-o", data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ctx.record_pid(perf.pid)
            time.sleep(0.5)
        t0, c0, w0 = thread_cpu(b.pid), cpu_seconds(b.pid), time.monotonic()
        ctx.run(label, cmd, 900, lg)
        entry = {"wall_s": time.monotonic() - w0, "broker_cpu_s": cpu_seconds(b.pid) - c0}
        t1 = thread_cpu(b.pid)
        threads = {k: round(v - t0.get(k, 0), 2) for k, v in t1.items()}
        entry["threads"] = dict(sorted(threads.items(), key=lambda kv: -kv[1]))
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            try:
                perf.wait(60)
            except subprocess.TimeoutExpired:
                perf.kill()
                perf.wait(10)
            ctx.forget_pid(perf.pid)
            entry["perf"] = perf_report(data)
        prof[name] = entry

    try:
        b.start()
        for t in ("prof-acks1", "prof-acksall"):
            ctx.run("create topic (rdkafka admin)", ctx.rd("create", b.bootstrap, topic=t,
                                                          partitions=6), 180, lg, settle=False)
        for acks, topic in (("1", "prof-acks1"), ("all", "prof-acksall")):
            profiled(f"ProducerPerformance acks={acks}",
                     f"ProducerPerformance unthrottled acks={acks} (profiled)", ctx.java_tool(
                         "ProducerPerformance", "--topic", topic, "--num-records",
                         str(p["produce"]), "--record-size", str(RECORD), "--throughput", "-1",
                         *producer_props(b, acks)))
        # The librdkafka consumer: the Java one is client-bound on this machine.
        profiled("rdkafka_load consume", "rdkafka_load consume (profiled)",
                 ctx.rd("consume", b.bootstrap, topic="prof-acks1", records=p["produce"]))
    except Exception as e:  # a profile is a diagnosis, never a reason to lose the figures
        prof["error"] = str(e)
    finally:
        b.stop()
        b.remove_data()
    return prof


def perf_report(data):
    def report(*extra):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                            "--percent-limit", "0.7", *extra],
                           capture_output=True, text=True, timeout=300)
        rows = []
        for line in r.stdout.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+(.*\S)\s*$", line)
            if m:
                sym = re.sub(r"\s+", " ", m.group(2))
                sym = re.sub(r"( -)+$", "", sym).strip()
                rows.append((float(m.group(1)), sym))
        return rows

    if not os.path.exists(data):
        return {"error": "no perf data"}
    return {"symbols": report("-g", "none", "--sort", "dso,symbol")[:30],
            "threads": report("-g", "none", "--sort", "comm")[:10]}


# ---------------------------------------------------------------------------------- report

# metric -> (label, unit, better: "high"|"low", target note)
METRICS = [
    ("produce_mb_s_acks1", "ProducerPerformance unthrottled, acks=1", "MB/s", "high", ">= 2x"),
    ("produce_mb_s_acksall", "ProducerPerformance unthrottled, acks=all", "MB/s", "high", ">= 2x"),
    ("consume_mb_s", "ConsumerPerformance (fetch MB/s)", "MB/s", "high", ">= 2x"),
    ("rd_produce_mb_s", "rdkafka_load produce unthrottled, acks=1", "MB/s", "high", ">= 2x"),
    ("rd_consume_mb_s", "rdkafka_load consume", "MB/s", "high", ">= 2x"),
    ("p1000_produce_mb_s", "ProducerPerformance acks=1, 1,000 partitions", "MB/s", "high", ""),
    ("produce_p99_ms_unthrottled_acks1", "unthrottled acks=1 p99 (queueing)", "ms", "low", ""),
    ("produce_p99_ms_unthrottled_acksall", "unthrottled acks=all p99 (queueing)", "ms", "low", ""),
    ("lat_acks1_avg_ms", "fixed rate acks=1 avg", "ms", "low", ""),
    ("lat_acks1_p50_ms", "fixed rate acks=1 p50", "ms", "low", ""),
    ("lat_acks1_p99_ms", "fixed rate acks=1 p99", "ms", "low", "<= 1/3"),
    ("lat_acks1_p999_ms", "fixed rate acks=1 p99.9", "ms", "low", ""),
    ("lat_acksall_avg_ms", "fixed rate acks=all avg", "ms", "low", ""),
    ("lat_acksall_p50_ms", "fixed rate acks=all p50", "ms", "low", ""),
    ("lat_acksall_p99_ms", "fixed rate acks=all p99", "ms", "low", "<= 1/3"),
    ("lat_acksall_p999_ms", "fixed rate acks=all p99.9", "ms", "low", ""),
    ("rd_lat_acks1_p50_us", "rdkafka fixed rate acks=1 p50", "us", "low", ""),
    ("rd_lat_acks1_p99_us", "rdkafka fixed rate acks=1 p99", "us", "low", "<= 1/3"),
    ("rd_lat_acks1_p999_us", "rdkafka fixed rate acks=1 p99.9", "us", "low", ""),
    ("rd_lat_acksall_p50_us", "rdkafka fixed rate acks=all p50", "us", "low", ""),
    ("rd_lat_acksall_p99_us", "rdkafka fixed rate acks=all p99", "us", "low", "<= 1/3"),
    ("rd_lat_acksall_p999_us", "rdkafka fixed rate acks=all p99.9", "us", "low", ""),
    ("e2e_avg_ms", "EndToEndLatency avg", "ms", "low", ""),
    ("e2e_p50_ms", "EndToEndLatency p50", "ms", "low", ""),
    ("e2e_p99_ms", "EndToEndLatency p99", "ms", "low", "<= 1/3"),
    ("e2e_p999_ms", "EndToEndLatency p99.9", "ms", "low", ""),
    ("rd_e2e_p50_us", "rdkafka e2e p50", "us", "low", ""),
    ("rd_e2e_p99_us", "rdkafka e2e p99", "us", "low", "<= 1/3"),
    ("rd_e2e_p999_us", "rdkafka e2e p99.9", "us", "low", ""),
    ("produce_cpu_s_per_gb_acks1", "broker CPU per GB produced, acks=1", "core-s/GB", "low",
     "<= 1/3 and < 0.3"),
    ("produce_cpu_s_per_gb_acksall", "broker CPU per GB produced, acks=all", "core-s/GB", "low",
     "<= 1/3"),
    ("produce_machine_cpu_s_per_gb_acks1",
     "machine CPU per GB produced minus the load generator, acks=1", "core-s/GB", "low", ""),
    ("produce_machine_cpu_s_per_gb_acksall",
     "machine CPU per GB produced minus the load generator, acks=all", "core-s/GB", "low", ""),
    ("consume_cpu_s_per_gb", "broker CPU per GB consumed (Java)", "core-s/GB", "low", "<= 1/3"),
    ("rd_produce_cpu_s_per_gb", "broker CPU per GB produced (rdkafka)", "core-s/GB", "low", ""),
    ("rd_consume_cpu_s_per_gb", "broker CPU per GB consumed (rdkafka)", "core-s/GB", "low", ""),
    ("idle_rss_mb", "idle RSS", "MiB", "low", "< 20 MiB"),
    ("peak_rss_mb", "peak RSS (VmHWM) after the 6-partition loads", "MiB", "low", ""),
    ("peak_rss_1000p_mb", "peak RSS (VmHWM) after 1,000 partitions", "MiB", "low", ""),
    ("startup_accept_ms", "start-up to first accepted connection", "ms", "low", "< 50 ms"),
    ("startup_apiversions_ms", "start-up to first ApiVersions answer", "ms", "low", ""),
    ("recovery_log_gib", "log on disk at kill -9", "GiB", "", ""),
    ("recovery_accept_ms", "kill -9 restart: first accepted connection", "ms", "low", ""),
    ("recovery_serving_ms", "kill -9 restart: serving watermarks of the log", "ms", "low", ""),
]


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3f}"


def cell(vals):
    if not vals:
        return "—", None
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med), med
    return f"{fmt(med)} ({fmt(min(vals))}–{fmt(max(vals))})", med


def sh(cmd):
    return " ".join(c if re.fullmatch(r"[\w./:=,@+-]+", c) else f"'{c}'" for c in cmd)


def machine_info():
    def cmd(*c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 2**20
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True,
                              timeout=30).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        java = "java ?"
    return dict(nproc=os.cpu_count(), mem_gib=round(mem, 1), cpu=model,
                kernel=cmd("uname", "-r"), java=java, rustc=cmd("rustc", "--version"),
                commit=cmd("git", "-C", REPO, "rev-parse", "--short=12", "HEAD"),
                dirty=cmd("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                          "--", "src", "Cargo.toml", "Cargo.lock"))


def ratio_note(key, better, target, rs):
    if rs is None:
        return ""
    if better == "high":
        return "meets" if "2x" in target and rs >= 2 else ("misses" if "2x" in target else "")
    if "1/3" in target:
        return "meets" if rs <= 1 / 3 else "misses"
    return ""


def write_report(ctx, p, results, prof, info, started, errors, quick):
    lines = []
    a = lines.append
    a("# Strom vs Apache Kafka 4.4.0 — side-by-side results")
    a("")
    a(f"Generated by `bash benches/run.sh{' --quick' if quick else ''}` on "
      f"{time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started))}, "
      f"{(time.time() - started) / 60:.1f} min.")
    a("")
    a(f"- commit `{info['commit']}`" + (" plus uncommitted changes in src/ or Cargo.* "
                                         "(the working tree was measured):\n  `" +
                                         info["dirty"].replace("\n", "`, `") + "`"
                                         if info["dirty"] else " (clean tree)"))
    a(f"- machine: {info['nproc']} cores ({info['cpu']}), {info['mem_gib']} GiB RAM, "
      f"Linux {info['kernel']}; {info['java']}; {info['rustc']}")
    busy = [b for b in results.get("_busy", []) if b["busy"]]
    if busy:
        a(f"- **machine was busy**: processes this run did not start (other engineers' "
      "compilers, brokers, JVMs) used >10% of a core at the start of "
          f"{len(busy)} of {len(results.get('_busy', []))} target runs "
          "(rounds/targets: " + ", ".join(f"r{b['round']} {b['target']} "
                                          f"[{' '.join(sorted(set(b['busy'])))}]"
                                          for b in busy) +
          "); figures from those runs are noisier.")
    else:
        a("- no other process used >10% of a core at the start of any target run")
    a(f"- rounds: {p['rounds']}; each round starts every target afresh (fresh temp data dir, "
      "free 127.0.0.1 ports) one at a time, order alternating between rounds; "
      "load generators run on the same 2-core machine as the broker")
    a(f"- record size {RECORD} B, uncompressed; producers linger.ms=5, batch.size=131072; "
      f"unthrottled runs {p['produce']:,} records; fixed-rate runs {p['lat_records']:,} "
      f"records at {p['rate']:,} records/s; 1,000-partition run {p['p1000']:,} records")
    a("- MB = 10^6 bytes of record values; CPU = broker process utime+stime from /proc "
      "(all threads, incl. JIT/GC for Kafka) divided by GB moved. 'Machine CPU minus the load "
      "generator' = all CPUs' busy time (/proc/stat) less the generator's (getrusage of the "
      "finished child): the broker plus kernel work done for it in other threads (writeback "
      "of a page-cache-only broker happens in kworkers, outside its process)")
    a("- Kafka: `kafka.Kafka` single-node KRaft (broker+controller), the JVM flags of "
      "kafka-server-start.sh (-Xmx1G -Xms1G, G1), otherwise defaults: no fsync on produce. "
      "`kafka-flush` = same plus `log.flush.interval.messages=1` (durability parity; produce "
      "rows only). Strom: defaults (acks=all answered after a group-committed fdatasync). "
      "`strom-nofsync` = Strom with `strom.acks.all.fsync=false` (acks=all answered from the "
      "page cache like Kafka's default; acks=all rows only)")
    a("- before each load the harness runs sync(2), so no load competes with the kernel "
      "writing back the previous one's data (the same for every target)")
    a("")
    if errors:
        a("## Failures")
        a("")
        for e in errors:
            a(f"- {e}")
        a("")
    a("## Results (median, min–max across rounds)")
    a("")
    a("Ratio = Strom median / Kafka median (for MB/s higher is better for Strom, for latency, "
      "CPU, memory and time lower is better). `kafka-flush` ratio = Strom / kafka-flush; "
      "`strom-nofsync` ratio = strom-nofsync / Kafka (both answer acks=all from the page cache).")
    a("")
    a("| figure | unit | Strom | Kafka | Strom/Kafka | target | kafka-flush | Strom/kafka-flush "
      "| strom-nofsync | strom-nofsync/Kafka |")
    a("|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for key, label, unit, better, target in METRICS:
        vals = results.get(key, {})
        s, sm = cell(vals.get("strom", []))
        k, km = cell(vals.get("kafka", []))
        f, fm = cell(vals.get("kafka-flush", []))
        n, nm = cell(vals.get("strom-nofsync", []))
        rn = nm / km if nm is not None and km else None
        if sm is None and km is None:
            continue
        r = sm / km if sm is not None and km else None
        rf = sm / fm if sm is not None and fm else None
        verdict = ""
        if r is not None and target:
            if "2x" in target or "1/3" in target:
                verdict = ratio_note(key, better, target, r)
            if key == "idle_rss_mb":
                verdict = "meets" if sm < 20 else "misses"
            if key == "startup_accept_ms":
                verdict = "meets" if sm < 50 else "misses"
            if key == "produce_cpu_s_per_gb_acks1":
                verdict = "meets" if r <= 1 / 3 and sm < 0.3 else "misses"
        summary[key] = (sm, km, r, verdict)
        a(f"| {label} | {unit} | {s} | {k} | {fmt(r) if r is not None else '—'} | "
          f"{target}{' — **' + verdict + '**' if verdict else ''} | {f} | "
          f"{fmt(rf) if rf is not None else '—'} | {n} | {fmt(rn) if rn is not None else '—'} |")
    a("")
    a("Notes on reading the table:")
    a("")
    a("- ProducerPerformance and EndToEndLatency report latency percentiles in whole "
      "milliseconds, and the producer's figure includes linger.ms=5 of client-side batching, "
      "so at a fixed rate both brokers sit near the 5 ms floor; the rdkafka rows (same "
      "linger, microseconds) resolve the broker's share better. (With linger.ms=0 every record "
      "becomes its own produce request; at 5,000 requests/s on this 2-core box both brokers "
      "queue for tens of ms or more, so that setting measures request rate, not latency.)")
    a("- Unthrottled p99 is queueing inside the producer at saturation, not service latency.")
    a("- The kill -9 recovery rows restart on the same data (the page cache still holds it), "
      "so they measure the brokers' recovery CPU work, not disk reads. 'Serving' is the time "
      "until the restarted broker answers ListOffsets for every partition of `p6-acks1` with "
      "all records present.")
    a("")
    a("## Raw figures per round")
    a("")
    a("| figure | target | round values |")
    a("|---|---|---|")
    for key, label, unit, _, _ in METRICS:
        for tgt in ("strom", "kafka", "kafka-flush", "strom-nofsync"):
            vals = results.get(key, {}).get(tgt)
            if vals:
                a(f"| {key} ({unit}) | {tgt} | {', '.join(fmt(v) for v in vals)} |")
    a("")
    a("## Where Strom's time goes")
    a("")
    a(profile_section(prof))
    a("")
    a("## Exact commands")
    a("")
    a("Ports and temp paths vary per run; `$B` is the broker's bootstrap address.")
    a("")
    a("```")
    for label, cmd in ctx.commands.items():
        txt = sh(cmd)
        txt = re.sub(r"127\.0\.0\.1:\d+", "$B", txt)
        txt = txt.replace(REPO + "/", "")
        a(f"# {label}")
        a(txt)
    a("```")
    a("")
    a("## Closing note")
    a("")
    a(closing_note(summary, prof))
    a("")
    path = os.path.join(HERE, "RESULTS.md")
    # A hand-written analysis below the marker survives re-runs (it names the run it is about).
    kept = ""
    try:
        with open(path) as fh:
            old = fh.read()
        if ANALYSIS_MARKER in old:
            kept = old[old.index(ANALYSIS_MARKER):]
    except FileNotFoundError:
        pass
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
        if kept:
            fh.write("\n" + kept)
    log(f"wrote {path}")


def profile_section(prof):
    if not prof:
        return "No profile was taken (`--no-profile`)."
    out = []
    if "error" in prof:
        out += [f"Profiling stopped early: {prof['error']}", ""]
    for mode, e in prof.items():
        if not isinstance(e, dict):
            continue
        out.append(f"### Strom under unthrottled {mode}")
        out.append("")
        out.append(f"{e['broker_cpu_s']:.2f} broker CPU-seconds over {e['wall_s']:.1f} s wall. "
                   "CPU by thread (from /proc/<pid>/task, seconds):")
        out.append("")
        out.append("| thread | CPU s |")
        out.append("|---|---|")
        for name, secs in list(e["threads"].items())[:8]:
            if secs > 0:
                out.append(f"| {name} | {secs:.2f} |")
        out.append("")
        perf = e.get("perf")
        if perf and perf.get("symbols"):
            out.append("`perf record -e cpu-clock -g -p <strom>` — top symbols, self time "
                       "(`perf report --no-children --sort dso,symbol`):")
            out.append("")
            out.append("| self % | dso / symbol |")
            out.append("|---|---|")
            for pct, sym in perf["symbols"][:25]:
                out.append(f"| {pct:.2f} | `{sym}` |")
            out.append("")
    return "\n".join(out)


def closing_note(summary, prof):
    out = []
    for key, label, unit, better, target in METRICS:
        if key in summary and summary[key][2] is not None and target:
            sm, km, r, verdict = summary[key]
            out.append(f"- {label}: Strom {fmt(sm)} vs Kafka {fmt(km)} {unit}, ratio {fmt(r)} "
                       f"(target {target}{': ' + verdict if verdict else ''})")
    return "\n".join(out)


# ---------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--kafka-lib", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    p = dict(QUICK if args.quick else FULL)
    if args.rounds:
        p["rounds"] = args.rounds
    ctx = Ctx(args)
    logs = os.path.join(args.out, "logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    started = time.time()
    info = machine_info()
    results, errors = {}, []
    for rnd in range(1, p["rounds"] + 1):
        order = ["strom", "kafka", "kafka-flush", "strom-nofsync"]
        if rnd % 2 == 0:
            order.reverse()
        for target in order:
            if target in ("kafka-flush", "strom-nofsync") and rnd > p["flush_rounds"]:
                continue
            try:
                measure(ctx, target, p, rnd, results)
            except Exception as e:
                log(f"round {rnd} {target}: {e}")
                errors.append(f"round {rnd} {target}: {e}")
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"params": p, "results": results, "errors": errors}, f, indent=1)
    prof = {}
    if not args.no_profile:
        log("profiling Strom under produce load")
        prof = profile_strom(ctx, p)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"params": p, "results": results, "errors": errors, "profile": prof,
                   "machine": info}, f, indent=1)
    write_report(ctx, p, results, prof, info, started, errors, args.quick)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
