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
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
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
            case "sec-acl": acl(); break;
            case "sec-oauth": oauth(); break;
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

    // ---------------------------------------------------------------- sec-oauth

    /** The pre-minted JWT files (COMPAT_SECURITY oauth_tokens, lib/jwt_tokens.py) by case. */
    static String tokenUrl(String tokenCase) {
        Object tokens = sec.get("oauth_tokens");
        Object path = tokens instanceof Map ? ((Map<?, ?>) tokens).get(tokenCase) : null;
        if (path == null) throw new Main.Fail("COMPAT_SECURITY oauth_tokens has no " + tokenCase);
        return "file://" + path;
    }

    /**
     * OAUTHBEARER with Kafka's own login callback handler reading the token from a file
     * (sasl.oauthbearer.token.endpoint.url=file://..., KIP-768's file retriever; the class in
     * org.apache.kafka.common.security.oauthbearer exists in 3.9, 4.1 and 4.4).
     */
    static String[] oauthConf(String tokenCase) {
        return new String[] {"bootstrap.servers", s("oauth"), "security.protocol", "SASL_PLAINTEXT", "sasl.mechanism", "OAUTHBEARER",
                             "sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
                             "sasl.login.callback.handler.class", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
                             "sasl.oauthbearer.token.endpoint.url", tokenUrl(tokenCase)};
    }

    static final List<String> OAUTH_REFUSED = List.of("expired", "wrong-audience", "bad-signature", "unsigned");

    /** probe() over the OAUTH listener; a client that refuses the token itself (at login, in Admin.create) reports "login: <class>". */
    static String oauthProbe(String tokenCase) {
        try {
            return probe(5000, oauthConf(tokenCase));
        } catch (Exception e) {
            Throwable r = e;
            while (r.getCause() != null && r.getCause() != r) r = r.getCause();
            System.err.println("[sec-oauth] " + tokenCase + ": the client refused it: " + e + " / " + r);
            lastMessage = r.getMessage();
            return "login: " + r.getClass().getSimpleName();
        }
    }

    static void oauth() throws Exception {
        // Kafka 3.9.1+/4.x clients read no file: URL that is not listed in this system property.
        List<String> urls = new ArrayList<>();
        for (String c : List.of("valid", "valid-rs256", "expired", "wrong-audience", "bad-signature", "unsigned")) urls.add(tokenUrl(c));
        System.setProperty(String.valueOf(sec.getOrDefault("oauth_allowed_urls_property", "org.apache.kafka.sasl.oauthbearer.allowed.urls")),
                           String.join(",", urls));
        createTopic(topic, 1, null);
        String principal = s("oauth_principal");
        try (Admin a = Main.admin()) {
            // ACLs on the topic for User:alice only: the round trip also shows the principal is User:alice.
            List<AclBinding> acls = new ArrayList<>();
            for (AclOperation op : List.of(AclOperation.WRITE, AclOperation.READ))
                acls.add(new AclBinding(new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL),
                                        new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW)));
            a.createAcls(acls).all().get(15, TimeUnit.SECONDS);
            List<String> described = describeTopicAcls(a, 2);
            obs.put("described", described);
            check(described.size() == 2, "DescribeAcls of the topic: " + described);
        }
        String first = probeUntil(true, 10000, oauthConf("valid"));
        check(first == null, "the valid ES256 token was not accepted: " + first + " " + lastMessage);
        roundTrip(oauthConf("valid"));
        String rs = oauthProbe("valid-rs256");
        obs.put("valid_rs256_error", rs);
        check(rs == null, "the valid RS256 token was not accepted: " + rs + " " + lastMessage);
        Map<String, String> bad = new TreeMap<>();
        for (String c : OAUTH_REFUSED) {
            lastMessage = null;
            String err = oauthProbe(c);
            obs.put(c + "_error", err);
            obs.put(c + "_message", lastMessage);
            if (!oauthExpected(c, err, lastMessage)) bad.put(c, err + " " + lastMessage);
        }
        // Kafka's file retriever refuses the unsigned token itself (above); given as is, the broker must refuse it.
        lastMessage = null;
        String raw = probe(5000, "bootstrap.servers", s("oauth"), "security.protocol", "SASL_PLAINTEXT", "sasl.mechanism", "OAUTHBEARER",
                           "sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required tokenFile=\""
                               + tokenUrl("unsigned").substring("file://".length()) + "\";",
                           "sasl.login.callback.handler.class", OAuthStaticToken.class.getName());
        obs.put("unsigned_as_is_error", raw);
        obs.put("unsigned_as_is_message", lastMessage);
        if (!"SaslAuthenticationException".equals(raw)) bad.put("unsigned (as is)", raw + " " + lastMessage);
        check(bad.isEmpty(), "tokens not refused as expected: " + bad);
    }

    /**
     * What the Java clients report per refused token against Kafka 4.4: the broker's
     * SaslAuthenticationException ({"status":"invalid_token"}), except for the unsigned token,
     * which Kafka's own login handler (FileJwtRetriever / ClientJwtValidator) refuses before
     * connecting: Admin.create fails with "Malformed JWT provided; expected three sections (header,
     * payload, and signature)" (String.split drops the empty signature section), a ConfigException
     * from the 4.1 / 4.4 clients, a javax LoginException from 3.9.
     */
    static boolean oauthExpected(String tokenCase, String err, String message) {
        if (!tokenCase.equals("unsigned")) return "SaslAuthenticationException".equals(err);
        return ("login: ConfigException".equals(err) || "login: LoginException".equals(err))
            && message != null && message.contains("Malformed JWT provided; expected three sections");
    }

    // ---------------------------------------------------------------- sec-acl

    static String plainPassword(String user) {
        Object users = sec.get("plain_users");
        Object pw = users instanceof Map ? ((Map<?, ?>) users).get(user) : null;
        if (pw == null) throw new Main.Fail("COMPAT_SECURITY plain_users has no " + user);
        return pw.toString();
    }

    static String[] plainAs(String user) {
        return sasl("sasl_plaintext", "SASL_PLAINTEXT", "PLAIN", user, plainPassword(user));
    }

    static AclBinding allow(ResourceType type, String name, String user, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, PatternType.LITERAL),
                              new AccessControlEntry("User:" + user, "*", op, AclPermissionType.ALLOW));
    }

    /** "TOPIC:LITERAL:<topic> User:alice@* READ ALLOW" (the cell's topic named <topic>, so Kafka's and Strom's observables compare). */
    static String aclString(AclBinding b) {
        String name = b.pattern().name().equals(topic) ? "<topic>" : b.pattern().name();
        return b.pattern().resourceType() + ":" + b.pattern().patternType() + ":" + name + " "
            + b.entry().principal() + "@" + b.entry().host() + " " + b.entry().operation() + " " + b.entry().permissionType();
    }

    /** DescribeAcls of the cell topic's LITERAL pattern, sorted; retried until it has `want` bindings (ACLs reach the broker through the metadata log). */
    static List<String> describeTopicAcls(Admin a, int want) throws Exception {
        AclBindingFilter f = new AclBindingFilter(new ResourcePatternFilter(ResourceType.TOPIC, topic, PatternType.LITERAL),
                                                  AccessControlEntryFilter.ANY);
        List<String> out = new ArrayList<>();
        long end = System.currentTimeMillis() + 10000;
        while (true) {
            out.clear();
            for (AclBinding b : a.describeAcls(f).values().get(10, TimeUnit.SECONDS)) out.add(aclString(b));
            Collections.sort(out);
            if (out.size() == want || System.currentTimeMillis() > end) return out;
            Thread.sleep(200);
        }
    }

    /** One record as `user` with small timeouts: null when acknowledged, else what the client reported (Kafka's error name). */
    static String produceAs(String user, String value) {
        try (KafkaProducer<String, String> p = producer(cat(plainAs(user), new String[] {
                "client.id", "compat-java-" + user, "max.block.ms", "5000", "delivery.timeout.ms", "6000",
                "request.timeout.ms", "5000", "linger.ms", "0"}))) {
            p.send(new org.apache.kafka.clients.producer.ProducerRecord<>(topic, 0, "k", value)).get(8, TimeUnit.SECONDS);
            return null;
        } catch (Exception e) {
            Throwable c = unwrap(e);
            lastMessage = c.getMessage();
            System.err.println("[sec-acl] produce as " + user + ": " + c);
            return Main.errName(c);
        }
    }

    static void acl() throws Exception {
        createTopic(topic, 1, null);
        String group = topic + "-g";
        try (Admin a = Main.admin()) {
            AclBinding write = allow(ResourceType.TOPIC, topic, "alice", AclOperation.WRITE);
            a.createAcls(List.of(write, allow(ResourceType.TOPIC, topic, "alice", AclOperation.READ),
                                 allow(ResourceType.GROUP, group, "alice", AclOperation.READ)))
             .all().get(15, TimeUnit.SECONDS);
            List<String> described = describeTopicAcls(a, 2);
            obs.put("described", described);
            List<String> want = List.of("TOPIC:LITERAL:<topic> User:alice@* READ ALLOW", "TOPIC:LITERAL:<topic> User:alice@* WRITE ALLOW");
            check(described.equals(want), "DescribeAcls of the topic: " + described + ", expected " + want);

            // alice: 5 records produced and consumed back in her group
            List<String> values = vals(5, "acl-");
            List<RecordMetadata> md;
            try (KafkaProducer<String, String> p = producer(cat(plainAs("alice"), new String[] {"client.id", "compat-java-alice"}))) {
                md = produceValues(p, topic, values);
            }
            obs.put("alice_produced_offsets", md.get(0).offset() + ".." + md.get(md.size() - 1).offset());
            List<String> got = new ArrayList<>();
            try (KafkaConsumer<String, String> c = Main.consumer(cat(plainAs("alice"), new String[] {
                    "group.id", group, "client.id", "compat-java-alice"}))) {
                c.subscribe(List.of(topic));
                long end = System.currentTimeMillis() + 15000;
                while (got.size() < 5 && System.currentTimeMillis() < end) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) got.add(r.offset() + ":" + r.value());
                }
                c.commitSync(Duration.ofSeconds(10));
            }
            obs.put("alice_consumed", got);
            check(got.equals(List.of("0:acl-0", "1:acl-1", "2:acl-2", "3:acl-3", "4:acl-4")), "alice consumed " + got);

            // admin (not a super user, no ACL): produce and group consume refused
            String adminProduce = produceAs("admin", "refused");
            obs.put("admin_produce_error", adminProduce);
            check("TOPIC_AUTHORIZATION_FAILED".equals(adminProduce), "admin's produce: " + adminProduce + ", expected TOPIC_AUTHORIZATION_FAILED");
            String adminConsume = null;
            try (KafkaConsumer<String, String> c = Main.consumer(cat(plainAs("admin"), new String[] {
                    "group.id", group, "client.id", "compat-java-admin", "request.timeout.ms", "5000"}))) {
                c.subscribe(List.of(topic));
                long end = System.currentTimeMillis() + 10000;
                int n = 0;
                while (adminConsume == null && System.currentTimeMillis() < end) {
                    try {
                        n += c.poll(Duration.ofMillis(200)).count();
                    } catch (Exception e) {
                        Throwable x = unwrap(e);
                        System.err.println("[sec-acl] consume as admin: " + x);
                        obs.put("admin_consume_message", String.valueOf(x.getMessage()).replace(topic, "<topic>"));
                        adminConsume = Main.errName(x);
                    }
                }
                obs.put("admin_consumed", n);
            }
            obs.put("admin_consume_error", adminConsume);
            check(ADMIN_CONSUME_ERROR.equals(adminConsume), "admin's group consume: " + adminConsume + ", expected " + ADMIN_CONSUME_ERROR);

            // DeleteAcls of alice's WRITE: exactly that binding; then alice's produce is refused
            Collection<AclBinding> deleted = a.deleteAcls(List.of(write.toFilter())).all().get(15, TimeUnit.SECONDS);
            List<String> del = new ArrayList<>();
            for (AclBinding b : deleted) del.add(aclString(b));
            obs.put("deleted", del);
            check(del.equals(List.of(aclString(write))), "DeleteAcls of alice's WRITE removed " + del);
            List<String> left = describeTopicAcls(a, 1);
            obs.put("described_after_delete", left);
            check(left.equals(List.of(want.get(0))), "DescribeAcls after the delete: " + left);
            String aliceAfter = produceAs("alice", "after-delete");
            obs.put("alice_produce_after_delete", aliceAfter);
            check("TOPIC_AUTHORIZATION_FAILED".equals(aliceAfter), "alice's produce without WRITE: " + aliceAfter + ", expected TOPIC_AUTHORIZATION_FAILED");
        }
    }

    /**
     * What the Java consumer of a user with no ACL reports against Kafka 4.4: its first Metadata
     * response names the topic TOPIC_AUTHORIZATION_FAILED (no DESCRIBE), which poll() throws
     * before the group's FindCoordinator (GROUP_AUTHORIZATION_FAILED) is answered.
     */
    static final String ADMIN_CONSUME_ERROR = "TOPIC_AUTHORIZATION_FAILED";

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
