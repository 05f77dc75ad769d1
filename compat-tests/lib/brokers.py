"""Start and stop the broker under test: Apache Kafka 4.4.0 (KRaft, single node, from the Maven
Central jars in the cache) or Strom (built from the repo root). Every process we start is
recorded by PID in a pidfile so run.sh's trap can stop it even if this Python process dies."""

import base64
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # compat-tests/
REPO = os.path.dirname(HERE)
CACHE = os.environ.get("COMPAT_CACHE", os.path.join(HERE, ".cache"))
PIDFILE = os.path.join(CACHE, "run", "pids")
LOG4J = os.path.join(HERE, "lib", "log4j2.properties")

# Broker settings both targets get (Kafka's names; Strom takes them with --set). The share-group
# acquisition lock may be set per group down to group.share.min.record.lock.duration.ms (Kafka's
# default 15000, allowed 1000-30000): 1000 lets share-lock-timeout use a 2 s lock.
SHARE_SETTINGS = ["group.share.min.record.lock.duration.ms=1000"]
SHARE_PROPS = "\n".join(SHARE_SETTINGS)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_pid(pid):
    os.makedirs(os.path.dirname(PIDFILE), exist_ok=True)
    with open(PIDFILE, "a") as f:
        f.write(f"{pid}\n")


def forget_pid(pid):
    try:
        with open(PIDFILE) as f:
            pids = [p.strip() for p in f if p.strip() and p.strip() != str(pid)]
        with open(PIDFILE, "w") as f:
            f.write("".join(p + "\n" for p in pids))
    except FileNotFoundError:
        pass


def stop_process(proc, grace_s=10):
    """Stop a process we started: SIGTERM, wait, then SIGKILL. By PID only."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            forget_pid(proc.pid)
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    forget_pid(proc.pid)


def api_versions_ok(port, timeout_s=2.0):
    """True when a raw ApiVersions v0 request on the port gets a well-formed answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            client = b"compat-probe"
            body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
            s.sendall(struct.pack(">i", len(body)) + body)
            hdr = _recv_exact(s, 4)
            size = struct.unpack(">i", hdr)[0]
            if size < 6 or size > 1 << 20:
                return False
            resp = _recv_exact(s, size)
            corr, err = struct.unpack(">ih", resp[:6])
            return corr == 7 and err == 0
    except (OSError, struct.error):
        return False


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("closed")
        buf += chunk
    return buf


def port_accepts(port, timeout_s=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_ready(proc, port, deadline_s, log_path, probe=api_versions_ok):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"process exited with code {proc.returncode} before accepting (log: {log_path})"
        if probe(port):
            return None
        time.sleep(0.3)
    return f"not ready within {deadline_s}s (log: {log_path})"


class Broker:
    def __init__(self, target, workdir, port, proc, log_path, version):
        self.target, self.workdir, self.port, self.proc = target, workdir, port, proc
        self.log_path, self.version = log_path, version
        self.bootstrap = f"127.0.0.1:{port}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        stop_process(self.proc)
        if self.workdir and os.environ.get("COMPAT_KEEP_DATA") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_kafka(log_dir):
    lib = os.path.join(CACHE, "lib44")
    if not os.path.isdir(lib):
        raise RuntimeError("Kafka jars missing (install.sh java failed)")
    workdir = tempfile.mkdtemp(prefix="compat-kafka-")
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
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
{SHARE_PROPS}
""")
    java = ["java", "-Xmx1g", "-Xms512m", f"-Dlog4j2.configurationFile={LOG4J}",
            "-cp", os.path.join(lib, "*")]
    cluster_id = "-"
    while cluster_id.startswith("-"):  # a leading '-' would be parsed as a flag (Kafka's own ids avoid it too)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log_path = os.path.join(log_dir, "kafka-broker.log")
    with open(log_path, "w") as log:
        fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                     "-c", props, "--standalone"],
                             stdout=log, stderr=subprocess.STDOUT, timeout=120)
    if fmt.returncode != 0:
        raise RuntimeError(f"kafka-storage format failed (log: {log_path})")
    log = open(log_path, "a")
    proc = subprocess.Popen(java + ["kafka.Kafka", props], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=workdir)
    record_pid(proc.pid)
    broker = Broker("kafka", workdir, port, proc, log_path, "Apache Kafka 4.4.0")
    err = wait_ready(proc, port, 90, log_path)
    if err:
        broker.stop()
        raise RuntimeError("Apache Kafka " + err)
    return broker


def build_strom(log_dir, build):
    """Returns (binary path, error string or None)."""
    binary = os.environ.get("STROM_BIN") or os.path.join(REPO, "target", "release", "strom")
    if build:
        log_path = os.path.join(log_dir, "strom-build.log")
        with open(log_path, "w") as log:
            try:
                r = subprocess.run(["cargo", "build", "--release", "--bin", "strom"], cwd=REPO,
                                   stdout=log, stderr=subprocess.STDOUT, timeout=1800,
                                   stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return binary, f"cargo build --release timed out (log: {log_path})"
        if r.returncode != 0:
            with open(log_path) as f:
                errs = [l.strip() for l in f if l.startswith("error")]
            return binary, f"cargo build --release failed: {(errs or ['see ' + log_path])[0]}"
    if not os.path.exists(binary):
        return binary, f"no Strom binary at {binary}"
    return binary, None


def start_strom(log_dir, binary):
    workdir = tempfile.mkdtemp(prefix="compat-strom-")
    port = free_port()
    log_path = os.path.join(log_dir, "strom-broker.log")
    log = open(log_path, "w")
    argv = [binary, "--data-dir", os.path.join(workdir, "data"), "--listen", f"127.0.0.1:{port}"]
    for kv in SHARE_SETTINGS:
        argv += ["--set", kv]
    proc = subprocess.Popen(argv,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=workdir)
    record_pid(proc.pid)
    broker = Broker("strom", workdir, port, proc, log_path, "Strom")
    # Strom counts as up once its port accepts; whether it answers is what the cells test.
    err = wait_ready(proc, port, 60, log_path, probe=port_accepts)
    if err:
        broker.stop()
        raise RuntimeError("Strom " + err)
    return broker


# --- Three-broker clusters (targets kafka3 and strom3) -----------------------------------------

CLUSTER_NODES = 3


def metadata_brokers(port, timeout_s=2.0):
    """How many brokers a raw Metadata v1 request (all topics) on the port lists; None on error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            client = b"compat-probe"
            body = struct.pack(">hhih", 3, 1, 9, len(client)) + client + struct.pack(">i", -1)
            s.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _recv_exact(s, 4))[0]
            if size < 8 or size > 1 << 24:
                return None
            resp = _recv_exact(s, size)
            corr, count = struct.unpack(">ii", resp[:8])
            return count if corr == 9 else None
    except (OSError, struct.error):
        return None


class ClusterBroker:
    """Three broker processes seen as one target: bootstrap lists all three, alive while all
    three run, stop() stops all. `proc` is the first one that exited (for the exit code)."""

    def __init__(self, target, nodes, workdir, version):
        self.target, self.nodes, self.workdir, self.version = target, nodes, workdir, version
        self.port = nodes[0]["port"]
        self.bootstrap = ",".join(f"127.0.0.1:{n['port']}" for n in nodes)
        self.log_path = ", ".join(n["log"] for n in nodes)

    @property
    def proc(self):
        dead = [n["proc"] for n in self.nodes if n["proc"].poll() is not None]
        return dead[0] if dead else self.nodes[0]["proc"]

    def alive(self):
        return all(n["proc"].poll() is None for n in self.nodes)

    def stop(self):
        for n in self.nodes:
            stop_process(n["proc"])
        if self.workdir and os.environ.get("COMPAT_KEEP_DATA") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)


def _cluster_ports():
    ports = set()
    while len(ports) < 2 * CLUSTER_NODES:
        ports.add(free_port())
    ports = sorted(ports)
    return [(ports[2 * i], ports[2 * i + 1]) for i in range(CLUSTER_NODES)]


def _cluster_up(target, nodes, workdir, version, deadline_s, name):
    """The started nodes as one target once all serve; stopped (and an error raised) if not."""
    broker = ClusterBroker(target, nodes, workdir, version)
    err = _wait_cluster(broker, deadline_s)
    if err:
        broker.stop()
        raise RuntimeError(f"{name}: {err}")
    return broker


def _wait_cluster(broker, deadline_s):
    """Every node answers ApiVersions and lists all the brokers in Metadata."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for n in broker.nodes:
            if n["proc"].poll() is not None:
                return f"node {n['id']} exited with code {n['proc'].returncode} before serving (log: {n['log']})"
        if all(api_versions_ok(n["port"]) and metadata_brokers(n["port"]) == CLUSTER_NODES for n in broker.nodes):
            return None
        time.sleep(0.5)
    return f"the {CLUSTER_NODES} nodes did not all serve within {deadline_s}s (logs: {broker.log_path})"


def start_kafka_cluster(log_dir):
    """Three Apache Kafka 4.4.0 nodes, each broker and controller (KRaft, static voters),
    replication factor 3 and min.insync.replicas 2 for new and internal topics."""
    lib = os.path.join(CACHE, "lib44")
    if not os.path.isdir(lib):
        raise RuntimeError("Kafka jars missing (install.sh java failed)")
    workdir = tempfile.mkdtemp(prefix="compat-kafka3-")
    ports = _cluster_ports()
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
    java = ["java", "-Xmx768m", "-Xms256m", f"-Dlog4j2.configurationFile={LOG4J}",
            "-cp", os.path.join(lib, "*")]
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    nodes = []
    for i, (port, cport) in enumerate(ports):
        node = i + 1
        props = os.path.join(workdir, f"server-{node}.properties")
        with open(props, "w") as f:
            f.write(f"""process.roles=broker,controller
node.id={node}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={workdir}/data-{node}
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
{SHARE_PROPS}
""")
        log_path = os.path.join(log_dir, f"kafka3-broker-{node}.log")
        with open(log_path, "w") as log:
            fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                         "-c", props], stdout=log, stderr=subprocess.STDOUT, timeout=120)
        if fmt.returncode != 0:
            for n in nodes:  # the nodes already started go too
                stop_process(n["proc"])
            shutil.rmtree(workdir, ignore_errors=True)
            raise RuntimeError(f"kafka-storage format failed (log: {log_path})")
        log = open(log_path, "a")
        proc = subprocess.Popen(java + ["kafka.Kafka", props], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir)
        record_pid(proc.pid)
        nodes.append({"id": node, "port": port, "proc": proc, "log": log_path})
    return _cluster_up("kafka3", nodes, workdir, "Apache Kafka 4.4.0 (3 nodes)", 120, "Apache Kafka cluster")


def start_strom_cluster(log_dir, binary):
    """Three Strom nodes, each broker and metadata-quorum voter, configured with Kafka's
    property names as the README's cluster section shows; replication factor 3,
    min.insync.replicas 2."""
    workdir = tempfile.mkdtemp(prefix="compat-strom3-")
    ports = _cluster_ports()
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
    nodes = []
    for i, (port, cport) in enumerate(ports):
        node = i + 1
        sets = [
            "process.roles=broker,controller", f"node.id={node}", f"controller.quorum.voters={voters}",
            "controller.listener.names=CONTROLLER",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "strom.admin.listener=",
            "default.replication.factor=3", "min.insync.replicas=2", "group.initial.rebalance.delay.ms=0",
        ] + SHARE_SETTINGS
        argv = [binary, "--data-dir", os.path.join(workdir, f"data-{node}")]
        for s in sets:
            argv += ["--set", s]
        log_path = os.path.join(log_dir, f"strom3-broker-{node}.log")
        log = open(log_path, "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        record_pid(proc.pid)
        nodes.append({"id": node, "port": port, "proc": proc, "log": log_path})
    return _cluster_up("strom3", nodes, workdir, "Strom (3 nodes)", 90, "Strom cluster")
