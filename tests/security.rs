//! Security listeners against the real broker binary: TLS and mTLS (rustls client, certificates
//! made by the test with rcgen), SASL PLAIN through librdkafka, the SASL exchange on the wire
//! (SaslHandshake / SaslAuthenticate, SCRAM with a client written here from RFC 5802), and
//! hostile input before authentication (requests other than SASL, oversized tokens, garbage in
//! a TLS handshake) — each answered with an error or a closed connection, never a crash.
//!
//! Real-client coverage of every mechanism (Java, librdkafka, franz-go, kafka-python, ...)
//! against Apache Kafka with the same properties is the compat suite's security family.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    ApiVersionsRequest, ApiVersionsResponse, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, MetadataRequest,
    MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use common::{api_versions_ok, free_port, RawClient};

struct Ports {
    plain: u16,
    ssl: u16,
    mtls: u16,
    sasl: u16,
}

/// A broker started from a properties file with every kind of listener, killed on drop.
struct SecureBroker {
    child: Child,
    ports: Ports,
    dir: tempfile::TempDir,
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SecureBroker {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none() && api_versions_ok(self.ports.plain)
    }
}

struct Pki {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

/// A CA, a broker certificate for 127.0.0.1 in one PEM keystore file, and a client
/// certificate with subject O=strom,OU=tests,CN=tls-client.
fn make_pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "strom-test-ca");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);

    let broker_key = KeyPair::generate().expect("broker key");
    let broker_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
    let broker = broker_params
        .signed_by(&broker_key, &issuer)
        .expect("broker cert");
    std::fs::write(
        dir.join("broker.pem"),
        format!("{}{}", broker_key.serialize_pem(), broker.pem()),
    )
    .expect("keystore");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("truststore");

    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params.distinguished_name = rcgen::DistinguishedName::new();
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "strom");
    client_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "tests");
    client_params
        .distinguished_name
        .push(DnType::CommonName, "tls-client");
    let client = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    Pki {
        ca_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

fn start(extra: &[&str]) -> (SecureBroker, Pki) {
    start_args(extra, &[])
}

/// [`start`] with command-line arguments after `--config`.
fn start_args(extra: &[&str], args: &[&str]) -> (SecureBroker, Pki) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let mut dir = Some(dir);
    for _ in 0..5 {
        let ports = Ports {
            plain: free_port(),
            ssl: free_port(),
            mtls: free_port(),
            sasl: free_port(),
        };
        let dir_path = dir.as_ref().expect("dir").path().to_path_buf();
        let d = dir_path.display();
        let mut props = format!(
            "listeners=PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{},MTLS://127.0.0.1:{},SASL_PLAINTEXT://127.0.0.1:{}\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT\n\
             ssl.keystore.type=PEM\nssl.keystore.location={d}/broker.pem\n\
             ssl.truststore.type=PEM\nssl.truststore.location={d}/ca.pem\n\
             listener.name.mtls.ssl.client.auth=required\n\
             listener.name.mtls.ssl.principal.mapping.rules=RULE:^CN=([^,]*),.*$/$1/U\n\
             sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";\n\
             connection.failed.authentication.delay.ms=50\n\
             sasl.server.max.receive.size=4096\n\
             strom.admin.listener=\n\
             log.dirs={d}/data\n",
            ports.plain, ports.ssl, ports.mtls, ports.sasl
        );
        for e in extra {
            props.push_str(e);
            props.push('\n');
        }
        let path = dir_path.join("server.properties");
        std::fs::write(&path, props).expect("properties");
        let log = std::fs::File::create(dir_path.join("broker.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn strom");
        let mut b = SecureBroker {
            child,
            ports,
            dir: dir.take().expect("dir"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let exited = loop {
            if b.child.try_wait().expect("wait").is_some() {
                break true;
            }
            if api_versions_ok(b.ports.plain) {
                break false;
            }
            assert!(Instant::now() < deadline, "not serving:\n{}", b.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        if !exited {
            return (b, pki);
        }
        let log = b.log();
        assert!(log.contains("cannot listen"), "broker exited:\n{log}");
        // A port was taken meanwhile: try others, in the same directory.
        dir = Some(std::mem::replace(
            &mut b.dir,
            tempfile::tempdir().expect("tempdir"),
        ));
    }
    panic!("no free ports after 5 attempts")
}

/// A connection that sends one request frame and reads one response frame, on any stream.
struct Wire<S: Read + Write> {
    s: S,
    correlation: i32,
}

impl<S: Read + Write> Wire<S> {
    fn send<Req: kafka_protocol::protocol::Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> std::io::Result<()> {
        self.send_claiming(key, version, version, req)
    }

    /// Sends `req` encoded at `version` under a header that claims `claimed`.
    fn send_claiming<Req: kafka_protocol::protocol::Encodable>(
        &mut self,
        key: ApiKey,
        claimed: i16,
        version: i16,
        req: &Req,
    ) -> std::io::Result<()> {
        use kafka_protocol::messages::RequestHeader;
        use kafka_protocol::protocol::Encodable;
        self.correlation += 1;
        let mut buf = bytes::BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(claimed)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("security-test")))
            .encode(&mut buf, key.request_header_version(version))
            .expect("header");
        req.encode(&mut buf, version).expect("body");
        let mut frame = (buf.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&buf);
        self.s.write_all(&frame)
    }

    fn recv<Resp: kafka_protocol::protocol::Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
    ) -> std::io::Result<Resp> {
        use kafka_protocol::messages::ResponseHeader;
        use kafka_protocol::protocol::Decodable;
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len)?;
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut buf)?;
        let mut b = Bytes::from(buf);
        let hv = if key == ApiKey::ApiVersions {
            0
        } else {
            key.response_header_version(version)
        };
        let h = ResponseHeader::decode(&mut b, hv).expect("header");
        assert_eq!(h.correlation_id, self.correlation);
        Ok(Resp::decode(&mut b, version).expect("response"))
    }

    /// One response frame's bytes (size prefix removed), undecoded.
    fn recv_raw(&mut self) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len)?;
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn call<Req, Resp>(&mut self, key: ApiKey, version: i16, req: &Req) -> std::io::Result<Resp>
    where
        Req: kafka_protocol::protocol::Encodable,
        Resp: kafka_protocol::protocol::Decodable,
    {
        self.send(key, version, req)?;
        self.recv(key, version)
    }
}

impl Wire<TcpStream> {
    /// True once the peer closed the connection (EOF or reset) within `wait`; false if it
    /// stays open that long (or sends something).
    fn closed_within(&mut self, wait: Duration) -> bool {
        self.s.set_read_timeout(Some(wait)).expect("timeout");
        let mut b = [0u8; 1];
        match self.s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

fn tcp(port: u16) -> Wire<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    Wire { s, correlation: 0 }
}

fn handshake(w: &mut Wire<TcpStream>, mechanism: &str) -> SaslHandshakeResponse {
    w.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(mechanism.to_string())),
    )
    .expect("handshake answered")
}

fn authenticate(w: &mut Wire<TcpStream>, token: &[u8]) -> SaslAuthenticateResponse {
    w.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
    )
    .expect("authenticate answered")
}

fn metadata<S: Read + Write>(w: &mut Wire<S>) -> std::io::Result<MetadataResponse> {
    w.call(ApiKey::Metadata, 12, &MetadataRequest::default())
}

#[test]
fn a_sasl_listener_serves_nothing_before_authentication() {
    let (mut b, _) = start(&[]);
    // ApiVersions is allowed (once); anything else but SASL closes the connection.
    let mut w = tcp(b.ports.sasl);
    let v: ApiVersionsResponse = w
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("security-test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .expect("ApiVersions before authenticating");
    assert_eq!(v.error_code, 0);
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::SaslHandshake as i16));
    w.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .expect("sent");
    assert!(
        w.closed_within(Duration::from_secs(5)),
        "Metadata before SASL must close"
    );

    // An ApiVersions version above ours is answered UNSUPPORTED_VERSION (v0 layout: the
    // error code right after the correlation id) and the client may ask again, as Kafka's
    // authenticator allows; then the handshake goes on.
    let mut w = tcp(b.ports.sasl);
    w.send_claiming(ApiKey::ApiVersions, 99, 3, &ApiVersionsRequest::default())
        .expect("sent");
    let raw = w.recv_raw().expect("answered");
    assert_eq!(&raw[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    let v: ApiVersionsResponse = w
        .call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
        .expect("asked again");
    assert_eq!(v.error_code, 0);
    assert_eq!(handshake(&mut w, "PLAIN").error_code, 0);

    // A mechanism the listener does not enable: UNSUPPORTED_SASL_MECHANISM (33) with the
    // enabled ones listed, then the connection closes.
    let mut w = tcp(b.ports.sasl);
    let h = handshake(&mut w, "GSSAPI");
    assert_eq!(h.error_code, 33);
    let names: Vec<&str> = h.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(names, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(w.closed_within(Duration::from_secs(5)));

    // An oversized SASL token (over sasl.server.max.receive.size = 4096) closes the connection
    // before it is buffered.
    let mut w = tcp(b.ports.sasl);
    assert_eq!(handshake(&mut w, "PLAIN").error_code, 0);
    let _ = w.s.write_all(&(1_000_000u32).to_be_bytes());
    assert!(w.closed_within(Duration::from_secs(5)));

    // A PLAIN token with the wrong password: SASL_AUTHENTICATION_FAILED (58), then closed.
    let mut w = tcp(b.ports.sasl);
    assert_eq!(handshake(&mut w, "PLAIN").error_code, 0);
    let r = authenticate(&mut w, b"\0alice\0wrong");
    assert_eq!(r.error_code, 58, "{:?}", r.error_message);
    assert!(w.closed_within(Duration::from_secs(5)));

    // The right one: Metadata is served, and lists the broker at this listener's address.
    let mut w = tcp(b.ports.sasl);
    assert_eq!(handshake(&mut w, "PLAIN").error_code, 0);
    let r = authenticate(&mut w, b"\0alice\0alice-secret");
    assert_eq!(r.error_code, 0);
    let m = metadata(&mut w).expect("metadata after authenticating");
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.brokers[0].port, i32::from(b.ports.sasl));
    // SaslHandshake again with re-authentication off: ILLEGAL_SASL_STATE from the handler.
    assert_eq!(handshake(&mut w, "PLAIN").error_code, 34);
    assert!(b.alive(), "{}", b.log());
    let log = b.log();
    assert!(
        log.contains("strom::audit") && log.contains("result=\"failure\""),
        "audit lines:\n{log}"
    );
}

/// SCRAM with a client written from RFC 5802 (the server's code is not used here): the
/// credential is created with AlterUserScramCredentials as `kafka-configs` would, from a salted
/// password computed by the client.
#[test]
fn scram_credentials_made_through_the_admin_api_authenticate() {
    let (mut b, _) = start(&[]);
    let mut admin = RawClient::connect(b.ports.plain);
    for (mech, ty, len) in [("SCRAM-SHA-256", 1i8, 32usize), ("SCRAM-SHA-512", 2, 64)] {
        let user = format!("u-{ty}");
        let salt = b"0123456789abcdef".to_vec();
        let salted = hi(ty, b"pw-secret", &salt, 4096);
        assert_eq!(salted.len(), len);
        let resp: AlterUserScramCredentialsResponse = admin.call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(StrBytes::from_string(user.clone()))
                    .with_mechanism(ty)
                    .with_iterations(4096)
                    .with_salt(Bytes::from(salt.clone()))
                    .with_salted_password(Bytes::from(salted.clone())),
            ]),
        );
        assert_eq!(resp.results[0].error_code, 0, "{:?}", resp.results[0]);
        // Too few iterations: UNACCEPTABLE_CREDENTIAL (93), as Kafka.
        let resp: AlterUserScramCredentialsResponse = admin.call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(StrBytes::from_static_str("weak"))
                    .with_mechanism(ty)
                    .with_iterations(100)
                    .with_salt(Bytes::from(salt.clone()))
                    .with_salted_password(Bytes::from(salted.clone())),
            ]),
        );
        assert_eq!(resp.results[0].error_code, 93);

        for (password, ok) in [("pw-secret", true), ("nope", false)] {
            let mut w = tcp(b.ports.sasl);
            assert_eq!(handshake(&mut w, mech).error_code, 0);
            let cnonce = "rOprNGfwEbeRWgbNEkqO";
            let first_bare = format!("n={user},r={cnonce}");
            let r = authenticate(&mut w, format!("n,,{first_bare}").as_bytes());
            assert_eq!(r.error_code, 0);
            let server_first = String::from_utf8(r.auth_bytes.to_vec()).expect("utf8");
            let attrs: Vec<&str> = server_first.split(',').collect();
            let nonce = attrs[0].strip_prefix("r=").expect("r");
            assert!(nonce.starts_with(cnonce));
            assert_eq!(attrs[1], format!("s={}", B64.encode(&salt)));
            assert_eq!(attrs[2], "i=4096");
            let salted = hi(ty, password.as_bytes(), &salt, 4096);
            let without_proof = format!("c=biws,r={nonce}");
            let auth = format!("{first_bare},{server_first},{without_proof}");
            let client_key = hmac(ty, &salted, b"Client Key");
            let stored = digest(ty, &client_key);
            let sig = hmac(ty, &stored, auth.as_bytes());
            let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
            let r = authenticate(
                &mut w,
                format!("{without_proof},p={}", B64.encode(proof)).as_bytes(),
            );
            if ok {
                assert_eq!(r.error_code, 0, "{:?}", r.error_message);
                let server_sig = hmac(ty, &hmac(ty, &salted, b"Server Key"), auth.as_bytes());
                assert_eq!(
                    String::from_utf8(r.auth_bytes.to_vec()).expect("utf8"),
                    format!("v={}", B64.encode(server_sig)),
                    "the server proves it knows the credential"
                );
                metadata(&mut w).expect("served after SCRAM");
            } else {
                assert_eq!(r.error_code, 58);
                assert!(w.closed_within(Duration::from_secs(5)));
            }
        }
    }
    let d: DescribeUserScramCredentialsResponse = admin.call(
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default(),
    );
    let users: Vec<(String, i8, i32)> = d
        .results
        .iter()
        .flat_map(|r| {
            r.credential_infos
                .iter()
                .map(|c| (r.user.to_string(), c.mechanism, c.iterations))
        })
        .collect();
    assert_eq!(
        users,
        vec![("u-1".to_string(), 1, 4096), ("u-2".to_string(), 2, 4096)]
    );
    // No authorizer: DescribeAcls answers SECURITY_DISABLED (54), as Kafka without one.
    let acls: DescribeAclsResponse = admin.call(
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1),
    );
    assert_eq!(acls.error_code, 54);
    assert!(b.alive());
}

fn hi(ty: i8, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let (alg, len) = if ty == 1 {
        (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32)
    } else {
        (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64)
    };
    let mut out = vec![0u8; len];
    ring::pbkdf2::derive(
        alg,
        std::num::NonZeroU32::new(iterations).expect("n"),
        salt,
        password,
        &mut out,
    );
    out
}

fn hmac(ty: i8, key: &[u8], data: &[u8]) -> Vec<u8> {
    let alg = if ty == 1 {
        ring::hmac::HMAC_SHA256
    } else {
        ring::hmac::HMAC_SHA512
    };
    ring::hmac::sign(&ring::hmac::Key::new(alg, key), data)
        .as_ref()
        .to_vec()
}

fn digest(ty: i8, data: &[u8]) -> Vec<u8> {
    let alg = if ty == 1 {
        &ring::digest::SHA256
    } else {
        &ring::digest::SHA512
    };
    ring::digest::digest(alg, data).as_ref().to_vec()
}

fn tls_client(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca"))
        .expect("root");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(if with_cert {
        builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(pki.client_cert_pem.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).expect("key"),
            )
            .expect("client cert")
    } else {
        builder.with_no_client_auth()
    })
}

type TlsWire = Wire<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

fn tls(port: u16, cfg: Arc<rustls::ClientConfig>) -> TlsWire {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let conn =
        rustls::ClientConnection::new(cfg, "127.0.0.1".try_into().expect("name")).expect("tls");
    Wire {
        s: rustls::StreamOwned::new(conn, s),
        correlation: 0,
    }
}

#[test]
fn tls_and_mutual_tls_listeners() {
    let (mut b, pki) = start(&[]);
    // TLS: the client checks the broker's certificate against the CA; Metadata answers with
    // the SSL listener's address.
    let mut w = tls(b.ports.ssl, tls_client(&pki, false));
    let m = metadata(&mut w).expect("metadata over TLS");
    assert_eq!(m.brokers[0].port, i32::from(b.ports.ssl));

    // mTLS required: without a certificate the handshake fails; with one, served.
    let mut w = tls(b.ports.mtls, tls_client(&pki, false));
    assert!(metadata(&mut w).is_err(), "no client certificate on MTLS");
    let mut w = tls(b.ports.mtls, tls_client(&pki, true));
    let m = metadata(&mut w).expect("metadata over mTLS");
    assert_eq!(m.brokers[0].port, i32::from(b.ports.mtls));
    // The principal: the DN mapped by this listener's rule (CN upper-cased).
    let log = b.log();
    assert!(
        log.contains("principal=User:TLS-CLIENT"),
        "mapped principal in the audit log:\n{log}"
    );

    // Garbage where a TLS handshake belongs (a plaintext Kafka request): the connection is
    // closed, the broker keeps serving.
    let mut w = tcp(b.ports.ssl);
    w.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .expect("sent");
    assert!(w.closed_within(Duration::from_secs(5)));
    let mut raw = TcpStream::connect(("127.0.0.1", b.ports.ssl)).expect("connect");
    let _ = raw.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5]);
    drop(raw);
    assert!(b.alive(), "{}", b.log());
    // And TLS spoken to the PLAINTEXT listener is a bad frame there.
    let mut w = tls(b.ports.plain, tls_client(&pki, false));
    assert!(metadata(&mut w).is_err());
    assert!(b.alive());
}

/// librdkafka, a real client, over SASL_PLAINTEXT with PLAIN: produce and consume; a wrong
/// password gets no metadata.
#[test]
fn librdkafka_produces_and_consumes_over_sasl_plain() {
    let (b, _) = start(&[]);
    let cfg = |password: &str| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", format!("127.0.0.1:{}", b.ports.sasl))
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", "alice")
            .set("sasl.password", password);
        c
    };
    let producer: FutureProducer = cfg("alice-secret").create().expect("producer");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    for i in 0..5 {
        rt.block_on(producer.send(
            FutureRecord::<(), _>::to("sasl-topic").payload(&format!("v{i}")),
            Duration::from_secs(20),
        ))
        .expect("produced over SASL");
    }
    let consumer: BaseConsumer = cfg("alice-secret")
        .set("group.id", "sasl-group")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["sasl-topic"]).expect("subscribe");
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 5 && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("consumed over SASL");
            got += 1;
        }
    }
    assert_eq!(got, 5);
    let bad: BaseConsumer = cfg("wrong").create().expect("consumer");
    assert!(bad
        .fetch_metadata(Some("sasl-topic"), Duration::from_secs(3))
        .is_err());
}

/// One ACL creation (resource type 2 = TOPIC, 3 = GROUP; pattern 3 = LITERAL; permission 3 =
/// ALLOW; operation 3 = READ, 4 = WRITE).
fn allow(resource_type: i8, name: &str, principal: &str, operation: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_string(principal.to_string()))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(operation)
        .with_permission_type(3)
}

/// The StandardAuthorizer's rules with librdkafka as the client: deny by default, ACLs made
/// with CreateAcls allow exactly what they name, DeleteAcls takes them back, a principal
/// without ALTER on the cluster may not manage ACLs, and `super.users` may do anything.
#[test]
fn acls_are_enforced_deny_by_default_with_librdkafka() {
    let admin_port = free_port();
    let admin_line = format!("strom.admin.listener=127.0.0.1:{admin_port}");
    let (b, _) = start(&[
        &admin_line,
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:ANONYMOUS",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";",
    ]);
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let cfg = |user: &str| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", format!("127.0.0.1:{}", b.ports.sasl))
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", user)
            .set("sasl.password", format!("{user}-secret"))
            .set("message.timeout.ms", "8000");
        c
    };
    let produce = |user: &str, value: &str| {
        let p: FutureProducer = cfg(user).create().expect("producer");
        rt.block_on(p.send(
            FutureRecord::<(), _>::to("acl-topic").payload(value),
            Duration::from_secs(10),
        ))
        .map(|_| ())
        .map_err(|(e, _)| e.to_string())
    };
    // The super user (PLAINTEXT: User:ANONYMOUS) makes the topic.
    let mut admin = tcp(b.ports.plain);
    let created: kafka_protocol::messages::CreateTopicsResponse = admin
        .call(
            ApiKey::CreateTopics,
            7,
            &kafka_protocol::messages::CreateTopicsRequest::default()
                .with_topics(vec![
                    kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                        .with_name(kafka_protocol::messages::TopicName(
                            StrBytes::from_static_str("acl-topic"),
                        ))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ])
                .with_timeout_ms(10_000),
        )
        .expect("CreateTopics");
    assert_eq!(created.topics[0].error_code, 0);

    // Deny by default: alice may not write, nor see the topic.
    let e = produce("alice", "early").expect_err("no ACL yet");
    assert!(e.contains("uthoriz"), "{e}");

    // A principal that is not a super user may not manage ACLs.
    let mut alice = tcp(b.ports.sasl);
    assert_eq!(handshake(&mut alice, "PLAIN").error_code, 0);
    assert_eq!(
        authenticate(&mut alice, b"\0alice\0alice-secret").error_code,
        0
    );
    let refused: CreateAclsResponse = alice
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![allow(
                2,
                "acl-topic",
                "User:alice",
                4,
            )]),
        )
        .expect("CreateAcls answered");
    assert_eq!(
        refused.results[0].error_code, 31,
        "CLUSTER_AUTHORIZATION_FAILED"
    );

    // The super user grants alice WRITE and READ on the topic and READ on the group.
    let made: CreateAclsResponse = admin
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![
                allow(2, "acl-topic", "User:alice", 4),
                allow(2, "acl-topic", "User:alice", 3),
                allow(3, "acl-group", "User:alice", 3),
            ]),
        )
        .expect("CreateAcls");
    assert!(made.results.iter().all(|r| r.error_code == 0), "{made:?}");
    for i in 0..5 {
        produce("alice", &format!("v{i}")).expect("alice may write");
    }
    let consumer = |user: &str| -> BaseConsumer {
        let c: BaseConsumer = cfg(user)
            .set("group.id", "acl-group")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        c.subscribe(&["acl-topic"]).expect("subscribe");
        c
    };
    let c = consumer("alice");
    let (mut got, mut errors) = (0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 5 && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    assert_eq!(got, 5, "alice consumed in acl-group ({errors:?})");
    drop(c);

    // bob has no ACL: the topic and the group have ACLs, none for him.
    let e = produce("bob", "nope").expect_err("bob may not write");
    assert!(e.contains("uthoriz"), "{e}");
    let c = consumer("bob");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut denied = None;
    while denied.is_none() && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => panic!("bob consumed {m:?}"),
            Some(Err(e)) if e.to_string().contains("uthoriz") => denied = Some(e.to_string()),
            _ => {}
        }
    }
    assert!(
        denied.is_some(),
        "bob's consumer was told it is not authorized"
    );
    drop(c);

    // DescribeAcls on the topic: alice's two; DeleteAcls of WRITE takes exactly one.
    let listed: DescribeAclsResponse = admin
        .call(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(StrBytes::from_static_str("acl-topic")))
                .with_pattern_type_filter(3)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
        )
        .expect("DescribeAcls");
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.resources.len(), 1);
    assert_eq!(listed.resources[0].acls.len(), 2);
    let deleted: DeleteAclsResponse = admin
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(StrBytes::from_static_str("acl-topic")))
                .with_pattern_type_filter(3)
                .with_principal_filter(Some(StrBytes::from_static_str("User:alice")))
                .with_host_filter(None)
                .with_operation(4)
                .with_permission_type(3)]),
        )
        .expect("DeleteAcls");
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    let e = produce("alice", "late").expect_err("WRITE was taken back");
    assert!(e.contains("uthoriz"), "{e}");
    let log = b.log();
    assert!(
        log.contains("strom::audit") && log.contains("denied") && log.contains("User:bob"),
        "the denials are audited"
    );
    // And counted on /metrics, with the authentications.
    let metrics = {
        let mut s = TcpStream::connect(("127.0.0.1", admin_port)).expect("admin listener");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    };
    let count = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    for api in ["Produce", "Metadata", "CreateAcls"] {
        let line = format!("strom_authorization_denials_total{{api=\"{api}\"}} ");
        assert!(count(&line) >= 1.0, "{line} in {metrics}");
    }
    assert!(
        count(
            r#"strom_authentications_total{listener="SASL_PLAINTEXT",mechanism="PLAIN",result="success"} "#
        ) >= 5.0,
        "{metrics}"
    );
}

/// A whole SCRAM exchange as `user` with `password` on the SASL listener: whether the broker
/// accepted it (and proved it knows the credential).
fn scram_login(port: u16, mech: &str, ty: i8, user: &str, password: &str) -> bool {
    let mut w = tcp(port);
    assert_eq!(handshake(&mut w, mech).error_code, 0);
    let cnonce = "fyko+d2lbbFgONRv9qkxdawL";
    let first_bare = format!("n={user},r={cnonce}");
    let r = authenticate(&mut w, format!("n,,{first_bare}").as_bytes());
    if r.error_code != 0 {
        return false;
    }
    let server_first = String::from_utf8(r.auth_bytes.to_vec()).expect("utf8");
    let attr = |k: &str| {
        server_first
            .split(',')
            .find_map(|a| a.strip_prefix(k))
            .expect("attribute")
            .to_string()
    };
    let (nonce, salt) = (attr("r="), B64.decode(attr("s=")).expect("salt"));
    let iterations: u32 = attr("i=").parse().expect("iterations");
    let salted = hi(ty, password.as_bytes(), &salt, iterations);
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{first_bare},{server_first},{without_proof}");
    let client_key = hmac(ty, &salted, b"Client Key");
    let sig = hmac(ty, &digest(ty, &client_key), auth.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    let r = authenticate(
        &mut w,
        format!("{without_proof},p={}", B64.encode(proof)).as_bytes(),
    );
    if r.error_code != 0 {
        return false;
    }
    let server_sig = hmac(ty, &hmac(ty, &salted, b"Server Key"), auth.as_bytes());
    assert_eq!(
        String::from_utf8(r.auth_bytes.to_vec()).expect("utf8"),
        format!("v={}", B64.encode(server_sig))
    );
    true
}

/// `--add-scram`, as `kafka-storage format --add-scram` takes it, makes a credential at first
/// start (quoted values may hold commas); it authenticates, a wrong password does not, and
/// DescribeUserScramCredentials lists it with its iterations.
#[test]
fn add_scram_makes_bootstrap_credentials() {
    let (b, _) = start_args(
        &[],
        &[
            "--add-scram",
            "SCRAM-SHA-512=[name=boot,password=\"boot,secret\",iterations=8192]",
            "--add-scram",
            "SCRAM-SHA-256=[name=boot,password=other-secret]",
        ],
    );
    assert!(scram_login(
        b.ports.sasl,
        "SCRAM-SHA-512",
        2,
        "boot",
        "boot,secret"
    ));
    assert!(!scram_login(
        b.ports.sasl,
        "SCRAM-SHA-512",
        2,
        "boot",
        "boot"
    ));
    assert!(scram_login(
        b.ports.sasl,
        "SCRAM-SHA-256",
        1,
        "boot",
        "other-secret"
    ));
    let mut admin = RawClient::connect(b.ports.plain);
    let d: DescribeUserScramCredentialsResponse = admin.call(
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default(),
    );
    let mut infos: Vec<(i8, i32)> = d.results[0]
        .credential_infos
        .iter()
        .map(|c| (c.mechanism, c.iterations))
        .collect();
    infos.sort();
    assert_eq!(infos, [(1, 4096), (2, 8192)]);
    assert!(
        !b.log().contains("boot,secret"),
        "the password is never logged"
    );
}

/// ES256 keys and tokens for the OAUTHBEARER tests (ring signs; the JWKS holds the public
/// point).
struct JwtIssuer {
    key: ring::signature::EcdsaKeyPair,
}

impl JwtIssuer {
    fn new() -> Self {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        JwtIssuer {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key"),
        }
    }

    fn jwks(&self) -> String {
        use ring::signature::KeyPair;
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let p = self.key.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","x":"{}","y":"{}"}}]}}"#,
            e(&p[1..33]),
            e(&p[33..65])
        )
    }

    /// A token for `sub` with audience `aud`, expiring `exp_in_s` from now.
    fn token(&self, sub: &str, aud: &str, exp_in_s: i64) -> String {
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let h = e(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
        let c = e(format!(
            r#"{{"sub":"{sub}","aud":"{aud}","iss":"https://issuer.test","iat":{now},"exp":{}}}"#,
            now + exp_in_s
        )
        .as_bytes());
        let signed = format!("{h}.{c}");
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signed.as_bytes())
            .expect("sign");
        format!("{signed}.{}", e(sig.as_ref()))
    }
}

/// OAUTHBEARER: a JWT signed by a key of the listener's JWKS (a file: URL), with the expected
/// audience and issuer, authenticates as `User:<sub>`; expired, wrongly addressed
/// and wrongly signed tokens get Kafka's `{"status":"invalid_token"}` challenge and, after the
/// client's %x01, SASL_AUTHENTICATION_FAILED.
#[test]
fn oauthbearer_tokens_signed_by_the_jwks_authenticate() {
    let keys = tempfile::tempdir().expect("tempdir");
    let issuer = JwtIssuer::new();
    let jwks = keys.path().join("jwks.json");
    std::fs::write(&jwks, issuer.jwks()).expect("jwks");
    let url = format!(
        "sasl.oauthbearer.jwks.endpoint.url=file://{}",
        jwks.display()
    );
    let (b, _) = start(&[
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        &url,
        "sasl.oauthbearer.expected.audience=strom",
        "sasl.oauthbearer.expected.issuer=https://issuer.test",
    ]);
    // (librdkafka here is built without OAUTHBEARER; compat-tests run real clients.)
    let good = issuer.token("alice", "strom", 3600);
    let mut w = tcp(b.ports.sasl);
    assert_eq!(handshake(&mut w, "OAUTHBEARER").error_code, 0);
    let r = authenticate(
        &mut w,
        format!("n,a=alice,\u{1}host=127.0.0.1\u{1}auth=Bearer {good}\u{1}\u{1}").as_bytes(),
    );
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert!(r.auth_bytes.is_empty());
    metadata(&mut w).expect("served after OAUTHBEARER");
    assert!(
        b.log().contains("User:alice") && b.log().contains("OAUTHBEARER"),
        "the principal is the token's sub"
    );
    // An authorization id other than the token's subject is refused.
    let mut w = tcp(b.ports.sasl);
    assert_eq!(handshake(&mut w, "OAUTHBEARER").error_code, 0);
    let r = authenticate(
        &mut w,
        format!("n,a=admin,\u{1}auth=Bearer {good}\u{1}\u{1}").as_bytes(),
    );
    assert_eq!(r.error_code, 58);
    let other = JwtIssuer::new();
    for (token, why) in [
        (issuer.token("alice", "strom", -120), "expired"),
        (issuer.token("alice", "elsewhere", 3600), "audience"),
        (other.token("alice", "strom", 3600), "signature"),
        (
            format!(
                "{}.{}.",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(br#"{"sub":"alice","aud":"strom","exp":9999999999}"#)
            ),
            "unsigned",
        ),
    ] {
        let mut w = tcp(b.ports.sasl);
        assert_eq!(handshake(&mut w, "OAUTHBEARER").error_code, 0);
        let r = authenticate(
            &mut w,
            format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").as_bytes(),
        );
        assert_eq!(r.error_code, 0, "{why}: the error comes as a challenge");
        assert_eq!(&r.auth_bytes[..], br#"{"status":"invalid_token"}"#, "{why}");
        let r = authenticate(&mut w, b"\x01");
        assert_eq!(r.error_code, 58, "{why}");
        assert_eq!(
            r.error_message.as_deref(),
            Some(r#"{"status":"invalid_token"}"#),
            "{why}"
        );
        assert!(w.closed_within(Duration::from_secs(5)), "{why}");
        assert!(b.log().contains(why), "the audit line says why: {why}");
    }
}
