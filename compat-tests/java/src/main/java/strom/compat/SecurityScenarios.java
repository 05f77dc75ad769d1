package strom.compat;

import static strom.compat.Main.check;
import static strom.compat.Main.checkExact;
import static strom.compat.Main.createTopic;
import static strom.compat.Main.obs;
import static strom.compat.Main.producer;
import static strom.compat.Main.produceValues;
import static strom.compat.Main.readFromStart;
import static strom.compat.Main.topic;
import static strom.compat.Main.unwrap;
import static strom.compat.Main.vals;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.ResourceNotFoundException;
import org.apache.kafka.common.protocol.Errors;

/**
 * The security scenarios (sec-*): the broker's SSL, MTLS (client certificate required),
 * SASL_PLAINTEXT and SASL_SSL listeners, whose addresses and the test CA / client certificate
 * files come from COMPAT_SECURITY (JSON, made by lib/brokers.py). Topics and SCRAM credentials
 * are made through the PLAINTEXT listener (the bootstrap argument). Uses only kafka-clients APIs
 * present since 2.7 (PEM stores, SCRAM credential admin), so it runs on every Java column.
 */
final class SecurityScenarios {
    private SecurityScenarios() {}

    static Map<String, Object> sec;
    /** The message of what the last failed probe reported (the broker's words where it sent some). */
    static String lastMessage;

    static void run(String s) throws Exception {
        String raw = System.getenv("COMPAT_SECURITY");
        if (raw == null || raw.isEmpty()) throw new Main.NotYet("no COMPAT_SECURITY: the broker has no security listeners");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) new Json(raw).value();
        sec = m;
        switch (s) {
            case "sec-tls": tls(); break;
            case "sec-mtls": mtls(); break;
            case "sec-plain": plain(); break;
            case "sec-scram-256": scram("SCRAM-SHA-256", ScramMechanism.SCRAM_SHA_256); break;
            case "sec-scram-512": scram("SCRAM-SHA-512", ScramMechanism.SCRAM_SHA_512); break;
            case "sec-sasl-ssl": saslSsl(); break;
            case "sec-plaintext-to-tls": plaintextToTls(); break;
            default: throw new Main.NotApplicable("no such security scenario in the Java driver: " + s);
        }
    }

    // ---------------------------------------------------------------- client settings

    static String s(String k) {
        Object v = sec.get(k);
        if (v == null) throw new Main.Fail("COMPAT_SECURITY has no " + k);
        return v.toString();
    }

    static String file(String k) throws Exception {
        return new String(Files.readAllBytes(Path.of(s(k))), StandardCharsets.UTF_8);
    }

    static String[] cat(String[]... parts) {
        List<String> out = new ArrayList<>();
        for (String[] p : parts) out.addAll(Arrays.asList(p));
        return out.toArray(new String[0]);
    }

    /** TLS verifying the broker against ca.pem (PEM truststore; hostname verification stays on). */
    static String[] tlsConf(String listener) {
        return new String[] {"bootstrap.servers", s(listener), "security.protocol", "SSL",
                             "ssl.truststore.type", "PEM", "ssl.truststore.location", s("ca")};
    }

    /** The client certificate as a PEM key store given inline (ssl.keystore.key + certificate chain). */
    static String[] clientCert() throws Exception {
        return new String[] {"ssl.keystore.type", "PEM", "ssl.keystore.key", file("client_key"),
                             "ssl.keystore.certificate.chain", file("client_cert")};
    }

    static String[] sasl(String listener, String protocol, String mechanism, String user, String password) {
        String module = mechanism.equals("PLAIN") ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                                                  : "org.apache.kafka.common.security.scram.ScramLoginModule";
        return new String[] {"bootstrap.servers", s(listener), "security.protocol", protocol, "sasl.mechanism", mechanism,
                             "sasl.jaas.config", module + " required username=\"" + user + "\" password=\"" + password + "\";"};
    }

    static String[] saslSslConf(String mechanism, String user, String password) {
        return cat(sasl("sasl_ssl", "SASL_SSL", mechanism, user, password),
                   new String[] {"ssl.truststore.type", "PEM", "ssl.truststore.location", s("ca")});
    }

    /** 5 records produced and read back from offset 0 with the given connection settings. */
    static void roundTrip(String... conf) throws Exception {
        List<String> values = vals(5, "sec-");
        List<RecordMetadata> md;
        try (KafkaProducer<String, String> p = producer(conf)) {
            md = produceValues(p, topic, values);
        }
        obs.put("produced_offsets", md.get(0).offset() + ".." + md.get(md.size() - 1).offset());
        List<ConsumerRecord<String, String>> got = readFromStart(topic, 0, 5, conf);
        obs.put("count", got.size());
        checkExact(got, values, 0);
    }

    /**
     * One DescribeCluster over a fresh connection with these settings, bounded to ~timeoutMs:
     * null when answered, else the class of what the client reported (e.g.
     * SaslAuthenticationException, SslAuthenticationException, TimeoutException).
     */
    static String probe(long timeoutMs, String... conf) {
        Properties p = new Properties();
        p.put("client.id", "compat-java-probe");
        p.put("request.timeout.ms", String.valueOf(timeoutMs));
        p.put("default.api.timeout.ms", String.valueOf(timeoutMs));
        p.put("reconnect.backoff.ms", "100");
        p.put("reconnect.backoff.max.ms", "500");
        for (int i = 0; i < conf.length; i += 2) p.put(conf[i], conf[i + 1]);
        Admin a = Admin.create(p);
        try {
            a.describeCluster().clusterId().get(timeoutMs + 2000, TimeUnit.MILLISECONDS);
            return null;
        } catch (ExecutionException e) {
            Throwable c = unwrap(e);
            System.err.println("[sec] probe of " + p.get("bootstrap.servers") + ": " + c);
            lastMessage = c.getMessage();
            return c.getClass().getSimpleName();
        } catch (Exception e) {
            lastMessage = e.getMessage();
            return e.getClass().getSimpleName();
        } finally {
            a.close(Duration.ofSeconds(2));
        }
    }

    /** Probes until the answer is (not) null, up to timeoutMs: credentials reach the broker through the metadata log. */
    static String probeUntil(boolean wantOk, long timeoutMs, String... conf) throws InterruptedException {
        long end = System.currentTimeMillis() + timeoutMs;
        String last;
        while (true) {
            last = probe(5000, conf);
            if ((last == null) == wantOk || System.currentTimeMillis() > end) return last;
            Thread.sleep(250);
        }
    }

    // ---------------------------------------------------------------- scenarios

    static void tls() throws Exception {
        createTopic(topic, 1, null);
        roundTrip(tlsConf("ssl"));
    }

    static void mtls() throws Exception {
        createTopic(topic, 1, null);
        roundTrip(cat(tlsConf("mtls"), clientCert()));
        obs.put("ok", true);
        String err = probe(5000, tlsConf("mtls"));
        obs.put("no_cert_refused", err != null);
        obs.put("no_cert_error", err);
        check(err != null, "a client without a certificate was served on the MTLS listener (ssl.client.auth=required)");
        check(err.equals("SslAuthenticationException"), "without a client certificate: " + err + ", expected SslAuthenticationException");
    }

    static void plain() throws Exception {
        createTopic(topic, 1, null);
        Object users = sec.get("plain_users");
        String pw = users instanceof Map ? String.valueOf(((Map<?, ?>) users).get("alice")) : "alice-secret";
        roundTrip(sasl("sasl_plaintext", "SASL_PLAINTEXT", "PLAIN", "alice", pw));
        String err = probe(5000, sasl("sasl_plaintext", "SASL_PLAINTEXT", "PLAIN", "alice", "wrong-" + pw));
        obs.put("bad_password_error", err);
        obs.put("bad_password_message", lastMessage);
        check("SaslAuthenticationException".equals(err), "alice with a wrong password: " + err + ", expected SaslAuthenticationException");
    }

    /** Upserts user's credential for mech (8192 iterations) and waits until DescribeUserScramCredentials shows it. */
    static String upsertScram(Admin a, String user, ScramMechanism mech, String password) throws Exception {
        a.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user, new ScramCredentialInfo(mech, 8192), password)))
         .all().get(15, TimeUnit.SECONDS);
        long end = System.currentTimeMillis() + 10000;
        String shown = "";
        while (System.currentTimeMillis() < end) {
            try {
                UserScramCredentialsDescription d = a.describeUserScramCredentials(List.of(user)).description(user).get(10, TimeUnit.SECONDS);
                StringJoiner j = new StringJoiner(",");
                for (ScramCredentialInfo ci : d.credentialInfos()) j.add(ci.mechanism() + ":" + ci.iterations());
                shown = j.toString();
                if (shown.equals(mech + ":8192")) break;
            } catch (ExecutionException e) {
                shown = Main.errName(e);
            }
            Thread.sleep(200);
        }
        return shown;
    }

    static void scram(String mechanism, ScramMechanism mech) throws Exception {
        createTopic(topic, 1, null);
        String user = "u-" + topic, pw = "pw-" + topic;
        try (Admin a = Main.admin()) {
            String shown = upsertScram(a, user, mech, pw);
            obs.put("described", shown);
            check(shown.equals(mech + ":8192"), "DescribeUserScramCredentials after the upsert: " + shown + ", expected " + mech + ":8192");
            String first = probeUntil(true, 10000, sasl("sasl_plaintext", "SASL_PLAINTEXT", mechanism, user, pw));
            check(first == null, "the new " + mechanism + " credential was not accepted within 10 s: " + first);
            roundTrip(sasl("sasl_plaintext", "SASL_PLAINTEXT", mechanism, user, pw));
            String bad = probe(5000, sasl("sasl_plaintext", "SASL_PLAINTEXT", mechanism, user, "wrong-" + pw));
            obs.put("bad_password_error", bad);
            obs.put("bad_password_message", lastMessage);
            check("SaslAuthenticationException".equals(bad), "a wrong password: " + bad + ", expected SaslAuthenticationException");
            a.alterUserScramCredentials(List.of(new UserScramCredentialDeletion(user, mech))).all().get(15, TimeUnit.SECONDS);
            String gone = "";
            long end = System.currentTimeMillis() + 10000;
            while (System.currentTimeMillis() < end) {
                try {
                    a.describeUserScramCredentials(List.of(user)).description(user).get(10, TimeUnit.SECONDS);
                    gone = "still described";
                } catch (ExecutionException e) {
                    gone = Main.errName(e);
                    if (unwrap(e) instanceof ResourceNotFoundException) break;
                }
                Thread.sleep(200);
            }
            obs.put("described_after_delete", gone);
            check(gone.equals(Errors.RESOURCE_NOT_FOUND.name()), "DescribeUserScramCredentials after the delete: " + gone + ", expected RESOURCE_NOT_FOUND");
            String after = probeUntil(false, 10000, sasl("sasl_plaintext", "SASL_PLAINTEXT", mechanism, user, pw));
            obs.put("after_delete_error", after);
            check("SaslAuthenticationException".equals(after), "the deleted credential's password: " + after + ", expected SaslAuthenticationException");
        }
    }

    static void saslSsl() throws Exception {
        createTopic(topic, 1, null);
        String user = "u-" + topic, pw = "pw-" + topic;
        try (Admin a = Main.admin()) {
            String shown = upsertScram(a, user, ScramMechanism.SCRAM_SHA_512, pw);
            check(shown.equals("SCRAM_SHA_512:8192"), "DescribeUserScramCredentials after the upsert: " + shown);
            String first = probeUntil(true, 10000, saslSslConf("SCRAM-SHA-512", user, pw));
            check(first == null, "SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: " + first);
            roundTrip(saslSslConf("SCRAM-SHA-512", user, pw));
            a.alterUserScramCredentials(List.of(new UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512))).all().get(15, TimeUnit.SECONDS);
        }
    }

    static void plaintextToTls() throws Exception {
        long t0 = System.currentTimeMillis();
        String err = probe(4000, "bootstrap.servers", s("ssl"), "security.protocol", "PLAINTEXT");
        obs.put("plaintext_to_ssl", err);
        System.err.println("[sec] plaintext to SSL: " + err + " after " + (System.currentTimeMillis() - t0) + " ms");
        check(err != null, "a PLAINTEXT client was served by the SSL listener");
        Object users = sec.get("plain_users");
        String pw = users instanceof Map ? String.valueOf(((Map<?, ?>) users).get("alice")) : "alice-secret";
        String sasl = probe(4000, sasl("plaintext", "SASL_PLAINTEXT", "PLAIN", "alice", pw));
        obs.put("sasl_to_plaintext", sasl);
        obs.put("sasl_to_plaintext_message", lastMessage);
        check(sasl != null, "a SASL client was served by the PLAINTEXT listener");
    }

    // ---------------------------------------------------------------- a small JSON reader (COMPAT_SECURITY)

    /** Objects, arrays, strings, numbers, true/false/null: enough for COMPAT_SECURITY on any classpath. */
    static final class Json {
        final String t;
        int i;

        Json(String t) { this.t = t; }

        Object value() {
            ws();
            char c = t.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                ws();
                if (t.charAt(i) == '}') { i++; return m; }
                while (true) {
                    ws();
                    String k = str();
                    ws();
                    expect(':');
                    m.put(k, value());
                    ws();
                    if (t.charAt(i) == ',') { i++; continue; }
                    expect('}');
                    return m;
                }
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                ws();
                if (t.charAt(i) == ']') { i++; return l; }
                while (true) {
                    l.add(value());
                    ws();
                    if (t.charAt(i) == ',') { i++; continue; }
                    expect(']');
                    return l;
                }
            }
            if (c == '"') return str();
            int start = i;
            while (i < t.length() && ",}] \n\r\t".indexOf(t.charAt(i)) < 0) i++;
            String w = t.substring(start, i);
            switch (w) {
                case "true": return true;
                case "false": return false;
                case "null": return null;
                default: return Double.parseDouble(w);
            }
        }

        String str() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (t.charAt(i) != '"') {
                char c = t.charAt(i++);
                if (c == '\\') {
                    char e = t.charAt(i++);
                    switch (e) {
                        case 'n': b.append('\n'); break;
                        case 't': b.append('\t'); break;
                        case 'r': b.append('\r'); break;
                        case 'b': b.append('\b'); break;
                        case 'f': b.append('\f'); break;
                        case 'u': b.append((char) Integer.parseInt(t.substring(i, i + 4), 16)); i += 4; break;
                        default: b.append(e);
                    }
                } else {
                    b.append(c);
                }
            }
            i++;
            return b.toString();
        }

        void ws() {
            while (i < t.length() && Character.isWhitespace(t.charAt(i))) i++;
        }

        void expect(char c) {
            if (t.charAt(i) != c) throw new IllegalArgumentException("COMPAT_SECURITY: expected '" + c + "' at " + i);
            i++;
        }
    }
}
