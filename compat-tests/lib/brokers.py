"""Start and stop the broker under test: Apache Kafka 4.4.0 (KRaft, single node, from the Maven
Central jars in the cache) or Strom (built from the repo root). Every process we start is
recorded by PID in a pidfile so run.sh's trap can stop it even if this Python process dies."""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import jwt_tokens

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


def free_ports(n):
    """n distinct free loopback ports."""
    ports = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


# --- Security listeners (single-node targets `kafka` and `strom`) ------------------------------
#
# Five client listeners on free ports, by name: PLAINTEXT (the one every other scenario uses:
# broker.port / broker.bootstrap), SSL (TLS, no client certificate), MTLS (protocol SSL with
# listener.name.mtls.ssl.client.auth=required), SASL_PLAINTEXT and SASL_SSL (PLAIN from the
# JAAS line, SCRAM-SHA-256/512 from credentials made with AlterUserScramCredentials), plus
# Kafka's CONTROLLER listener. The certificates are made at broker start into <workdir>/tls by
# make_certs(); the property lines are security_props(), written once for both brokers; drivers
# learn the addresses and files from COMPAT_SECURITY (security_env()).

SECURITY_LISTENERS = ("plaintext", "ssl", "mtls", "sasl_plaintext", "sasl_ssl")
_LISTENER_PROTOCOL = {"PLAINTEXT": "PLAINTEXT", "SSL": "SSL", "MTLS": "SSL",
                      "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"}
PLAIN_USERS = {"alice": "alice-secret", "admin": "admin-secret"}
P12_PASSWORD = "compat-pass"
CLIENT_SUBJECT = "CN=compat-client,OU=compat,O=strom"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# KRaft's ACL authorizer (ACLs kept in the metadata log), for both brokers.
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# What the security cells report when the broker has no security listeners.
STROM_NO_SECURITY = "Strom started without security listeners (COMPAT_STROM_SECURITY=0)"

# SASL/OAUTHBEARER (sec-oauth): its own SASL_PLAINTEXT listener OAUTH whose only mechanism is
# OAUTHBEARER, tokens validated against <workdir>/oauth/jwks.json (lib/jwt_tokens.py). Both brokers
# get it; COMPAT_STROM_OAUTH=0 leaves it out of Strom's lines, and the OAUTH_SCENARIOS cells are
# then `not yet` with STROM_NO_OAUTH.
OAUTH_LISTENER = "oauth"
# Kafka 4.x reads no file: or http(s): OAuth URL that is not listed in this JVM system property
# (comma-separated, compared as written; ConfigurationUtils.throwIfURLIsNotAllowed).
OAUTH_ALLOWED_URLS_PROP = "org.apache.kafka.sasl.oauthbearer.allowed.urls"
STROM_NO_OAUTH = "Strom started without the OAUTHBEARER listener (COMPAT_STROM_OAUTH=0)"


def oauth_jwks_url(workdir):
    return "file://" + os.path.join(workdir, "oauth", "jwks.json")


def strom_oauth_enabled():
    return os.environ.get("COMPAT_STROM_OAUTH", "1") != "0"


def _tls_paths(workdir):
    d = os.path.join(workdir, "tls")
    return {k: os.path.join(d, f) for k, f in (
        ("dir", ""), ("ca_key", "ca-key.pem"), ("ca", "ca.pem"),
        ("broker_key", "broker-key.pem"), ("broker_cert", "broker-cert.pem"),
        ("broker_keystore", "broker-keystore.pem"),
        ("client_key", "client-key.pem"), ("client_cert", "client-cert.pem"), ("client_p12", "client.p12"))}


_OPENSSL_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _certs_openssl(t):
    def run(*args):
        r = subprocess.run(["openssl", *args], cwd=t["dir"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {(r.stderr or r.stdout).strip()[-300:]}")
    cnf = os.path.join(t["dir"], "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(_OPENSSL_CNF)
    for key in ("ca_key", "broker_key", "client_key"):  # genpkey writes unencrypted PKCS#8 PEM
        run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", t[key])
    run("req", "-x509", "-new", "-key", t["ca_key"], "-subj", "/O=strom/OU=compat/CN=compat-test-ca",
        "-days", "30", "-sha256", "-config", cnf, "-extensions", "ca", "-out", t["ca"])
    for name, subj, serial in (("broker", "/O=strom/OU=compat/CN=localhost", "2"),
                               ("client", "/O=strom/OU=compat/CN=compat-client", "3")):
        csr = os.path.join(t["dir"], f"{name}.csr")
        run("req", "-new", "-key", t[f"{name}_key"], "-subj", subj, "-config", cnf, "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", t["ca"], "-CAkey", t["ca_key"], "-set_serial", serial,
            "-days", "30", "-sha256", "-extfile", cnf, "-extensions", name, "-out", t[f"{name}_cert"])
    run("pkcs12", "-export", "-inkey", t["client_key"], "-in", t["client_cert"], "-certfile", t["ca"],
        "-name", "compat-client", "-passout", f"pass:{P12_PASSWORD}", "-out", t["client_p12"])


def _certs_cryptography(t):
    """The same files with Python's `cryptography` (when there is no openssl CLI)."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "strom"),
                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "compat"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key(path):
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(path, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        return k

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, ca_name = key(t["ca_key"]), name("compat-test-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    with open(t["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    certs = {}
    for n, cn, serial, eku, san in (
            ("broker", "localhost", 2, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
             [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            ("client", "compat-client", 3, [ExtendedKeyUsageOID.CLIENT_AUTH], None)):
        k = key(t[f"{n}_key"])
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_name).public_key(k.public_key())
             .serial_number(serial).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
             .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        certs[n] = (k, b.sign(ca_key, hashes.SHA256()))
        with open(t[f"{n}_cert"], "wb") as f:
            f.write(certs[n][1].public_bytes(serialization.Encoding.PEM))
    k, c = certs["client"]
    with open(t["client_p12"], "wb") as f:
        f.write(pkcs12.serialize_key_and_certificates(b"compat-client", k, c, [ca],
                                                      serialization.BestAvailableEncryption(P12_PASSWORD.encode())))


def make_certs(workdir):
    """The test CA and certificates in <workdir>/tls (a fresh CA per broker start): ca.pem; a
    broker certificate for localhost / 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost) and the
    broker keystore as one PEM file, the unencrypted PKCS#8 key followed by the certificate
    chain (Kafka's ssl.keystore.type=PEM file format); a client certificate with subject
    CN=compat-client,OU=compat,O=strom as a PEM key/cert pair and as client.p12 (password
    compat-pass). Made with the openssl CLI, or Python's cryptography when openssl is missing.
    Returns the paths."""
    t = _tls_paths(workdir)
    os.makedirs(t["dir"], exist_ok=True)
    if shutil.which("openssl"):
        _certs_openssl(t)
    else:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            raise RuntimeError("no openssl CLI and no Python cryptography module to make the test certificates")
        _certs_cryptography(t)
    with open(t["broker_keystore"], "w") as out:
        for part in ("broker_key", "broker_cert", "ca"):
            with open(t[part]) as f:
                out.write(f.read().rstrip("\n") + "\n")
    return t


def security_props(workdir, ports):
    """The security section of the broker configuration as Kafka property lines, the same for
    Apache Kafka (server.properties) and Strom (--config). ports: the five client listeners'
    ports by name (SECURITY_LISTENERS), "oauth" for the OAUTHBEARER listener (absent: no such
    listener, no OAUTHBEARER line at all) and, for a KRaft node, "controller"; the certificates are
    make_certs(workdir)'s, the JWKS make_oauth's."""
    t = _tls_paths(workdir)
    names = [n.upper() for n in SECURITY_LISTENERS]
    proto = dict(_LISTENER_PROTOCOL)
    if ports.get(OAUTH_LISTENER):
        names.append(OAUTH_LISTENER.upper())
        proto[OAUTH_LISTENER.upper()] = "SASL_PLAINTEXT"
    clients = [f"{n}://127.0.0.1:{ports[n.lower()]}" for n in names]
    listeners = clients + ([f"CONTROLLER://127.0.0.1:{ports['controller']}"] if ports.get("controller") else [])
    proto_map = [f"{n}:{proto[n]}" for n in names] + ["CONTROLLER:PLAINTEXT"]
    users = " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items())
    lines = [
        "listeners=" + ",".join(listeners),
        "advertised.listeners=" + ",".join(clients),
        "listener.security.protocol.map=" + ",".join(proto_map),
    ]
    if ports.get("controller"):
        lines.append("controller.listener.names=CONTROLLER")
    lines += [
        "inter.broker.listener.name=PLAINTEXT",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={t['broker_keystore']}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={t['ca']}",
        "listener.name.mtls.ssl.client.auth=required",
        "sasl.enabled.mechanisms=" + ",".join(SASL_MECHANISMS),
    ]
    for l in ("sasl_plaintext", "sasl_ssl"):
        lines += [
            f"listener.name.{l}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
            f"listener.name.{l}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"listener.name.{l}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ]
    if ports.get(OAUTH_LISTENER):
        lines += oauth_props(workdir)
    # The authorizer (sec-acl, cli-acls). PLAINTEXT and CONTROLLER connections are User:ANONYMOUS,
    # a super user: every other scenario, the admin work and the inter-broker / controller traffic
    # stay all-powerful. A resource without any ACL stays open to everyone, so the other security
    # cells (TLS, mTLS and SASL users on their own topics) keep working; ACL cells bind ACLs only to
    # their own LITERAL resources (never CLUSTER, never `*` or a prefix), cells running in parallel.
    lines += [
        "authorizer.class.name=" + AUTHORIZER,
        "super.users=User:ANONYMOUS",
        "allow.everyone.if.no.acl.found=true",
    ]
    return lines


def oauth_props(workdir):
    """The OAUTH listener's lines (sec-oauth): OAUTHBEARER only on that listener, Kafka's
    OAuthBearerValidatorCallbackHandler (KIP-768) checking the signature against the JWKS file and
    the aud / iss claims (exp and sub are always checked)."""
    l = OAUTH_LISTENER
    return [
        f"listener.name.{l}.sasl.enabled.mechanisms=OAUTHBEARER",
        f"listener.name.{l}.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        f"listener.name.{l}.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        f"listener.name.{l}.oauthbearer.sasl.oauthbearer.jwks.endpoint.url={oauth_jwks_url(workdir)}",
        f"sasl.oauthbearer.expected.audience={jwt_tokens.AUDIENCE}",
        f"sasl.oauthbearer.expected.issuer={jwt_tokens.ISSUER}",
    ]


def security_env(workdir, ports, oauth=None):
    """What drivers get as COMPAT_SECURITY (JSON): the listeners' addresses and the client files;
    with oauth (make_oauth's answer) also the OAUTH listener and the token files."""
    t = _tls_paths(workdir)
    env = {n: f"127.0.0.1:{ports[n]}" for n in SECURITY_LISTENERS}
    env.update(ca=t["ca"], client_cert=t["client_cert"], client_key=t["client_key"],
               client_p12=t["client_p12"], client_p12_password=P12_PASSWORD, plain_users=dict(PLAIN_USERS))
    if oauth and ports.get(OAUTH_LISTENER):
        env.update(oauth=f"127.0.0.1:{ports[OAUTH_LISTENER]}", oauth_tokens=oauth["tokens"], oauth_exp=oauth["exp"],
                   oauth_jwks=oauth["jwks"], oauth_principal="User:" + jwt_tokens.SUBJECT,
                   oauth_allowed_urls_property=OAUTH_ALLOWED_URLS_PROP)
    return env


def wait_ports(proc, ports, deadline_s, log_path):
    """Every listed port accepts (the broker opens its listeners together; this bounds the rest)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"process exited with code {proc.returncode} (log: {log_path})"
        if all(port_accepts(p) for p in ports):
            return None
        time.sleep(0.2)
    return f"security listeners {ports} not accepting within {deadline_s}s (log: {log_path})"


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
    def __init__(self, target, workdir, port, proc, log_path, version, security=None, security_error=None):
        self.target, self.workdir, self.port, self.proc = target, workdir, port, proc
        self.log_path, self.version = log_path, version
        self.bootstrap = f"127.0.0.1:{port}"
        # COMPAT_SECURITY for the drivers (security_env()), or None with the reason why not.
        self.security, self.security_error = security, security_error

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
    port, cport, oport, *sec_ports = free_ports(len(SECURITY_LISTENERS) + 2)  # client listeners, controller, OAUTH
    ports = dict(zip(SECURITY_LISTENERS, [port] + sec_ports), controller=cport, oauth=oport)
    security, security_error = None, None
    try:
        make_certs(workdir)
        oauth = jwt_tokens.make_oauth(workdir)
        listener_lines = "\n".join(security_props(workdir, ports))
        security = security_env(workdir, ports, oauth)
        sec_ports = sec_ports + [oport]
    except Exception as e:  # noqa: BLE001 - the security cells fail with this; the rest run
        security_error = f"harness: no test certificates or OAuth keys ({e})"
        listener_lines = f"""listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"""
    props = os.path.join(workdir, "server.properties")
    with open(props, "w") as f:
        f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
{listener_lines}
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
            f"-D{OAUTH_ALLOWED_URLS_PROP}={oauth_jwks_url(workdir)}", "-cp", os.path.join(lib, "*")]
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
    broker = Broker("kafka", workdir, port, proc, log_path, "Apache Kafka 4.4.0", security, security_error)
    err = wait_ready(proc, port, 90, log_path)
    if not err and security:
        err = wait_ports(proc, sec_ports, 30, log_path)
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


def strom_security_enabled():
    """Strom starts with the security listeners (security_props in a --config file), as Kafka
    does; COMPAT_STROM_SECURITY=0 keeps its one PLAINTEXT --listen, and the security cells are
    then `not yet`."""
    return os.environ.get("COMPAT_STROM_SECURITY", "1") != "0"


def start_strom(log_dir, binary):
    workdir = tempfile.mkdtemp(prefix="compat-strom-")
    security, security_error, sec_ports = None, STROM_NO_SECURITY, []
    if strom_security_enabled():
        port, cport, *sec_ports = free_ports(len(SECURITY_LISTENERS) + 1)  # the client listeners + the controller
        ports = dict(zip(SECURITY_LISTENERS, [port] + sec_ports), controller=cport)
        oauth = None
        try:
            make_certs(workdir)  # a failure here is a start failure: the run asked for security
            if strom_oauth_enabled():  # the OAUTH listener only on request (see STROM_NO_OAUTH)
                oauth = jwt_tokens.make_oauth(workdir)
                oport = free_port()
                while oport in ports.values():
                    oport = free_port()
                ports[OAUTH_LISTENER] = oport
                sec_ports.append(oport)
        except Exception:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        conf = os.path.join(workdir, "strom.properties")
        with open(conf, "w") as f:
            f.write("\n".join(security_props(workdir, ports)) + "\n")
        listen = ["--config", conf]
        security, security_error = security_env(workdir, ports, oauth), None
    else:
        port = free_port()
        listen = ["--listen", f"127.0.0.1:{port}"]
    log_path = os.path.join(log_dir, "strom-broker.log")
    log = open(log_path, "w")
    argv = [binary] + listen + ["--data-dir", os.path.join(workdir, "data")]
    for kv in SHARE_SETTINGS:
        argv += ["--set", kv]
    proc = subprocess.Popen(argv,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=workdir)
    record_pid(proc.pid)
    broker = Broker("strom", workdir, port, proc, log_path, "Strom", security, security_error)
    # Strom counts as up once its port accepts; whether it answers is what the cells test.
    err = wait_ready(proc, port, 60, log_path, probe=port_accepts)
    if not err and sec_ports:
        err = wait_ports(proc, sec_ports, 30, log_path)
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
