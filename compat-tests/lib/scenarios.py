"""The scenario and client catalogue: stable ids, what each scenario checks, which area of the
broker a failure points at, and how each client's driver is run. The drivers themselves live in
java/, python/, go/ and node/; every driver takes `<scenario> <bootstrap> <topic>` and prints one
line `@@RESULT {"status": "pass"|"fail"|"n/a"|"not_yet", "detail": "...", "obs": {...}}`."""

import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # compat-tests/
CACHE = os.environ.get("COMPAT_CACHE", os.path.join(HERE, ".cache"))

# The area of the sec-* scenarios: lib/matrix.py reports them `not yet` on a broker without
# security listeners (Strom with COMPAT_STROM_SECURITY=0, the clusters).
SECURITY_AREA = "security"

# id, area (for FINDINGS), quick?, hard timeout (s), what it checks
SCENARIOS = [
    ("metadata", "broker core", True, 40,
     "bootstrap + Metadata: exactly one broker, advertised at the bootstrap address"),
    ("topic-admin", "admin / metadata", True, 50,
     "create (3 partitions, retention.ms=3600000), describe, incremental alter-config to 7200000 and read back, delete and see it gone"),
    ("codec-none", "broker core", True, 40, "20 keyed records, compression none: exact values and offsets 0..19 back"),
    ("codec-gzip", "broker core", False, 40, "same with gzip"),
    ("codec-snappy", "broker core", False, 40, "same with snappy"),
    ("codec-lz4", "broker core", False, 40, "same with lz4"),
    ("codec-zstd", "broker core", True, 40, "same with zstd"),
    ("record-fields", "broker core", True, 40,
     "keys (incl. null), headers (duplicate keys, order, empty value), explicit CreateTime timestamps and a null value round-trip"),
    ("offset-earliest", "consumer groups", True, 45,
     "group consumer with auto.offset.reset=earliest reads the 5 pre-existing records from offset 0"),
    ("offset-latest", "consumer groups", False, 45,
     "group consumer with auto.offset.reset=latest sees only records produced after it joined"),
    ("offsets-for-times", "broker core (ListOffsets)", True, 40,
     "ListOffsets by timestamp: ts base+2500 -> offset 3, base -> 0, future -> none"),
    ("group-rebalance", "consumer groups", True, 60,
     "three consumers in one group split 3 partitions 1/1/1; after one leaves, the other two cover all 3"),
    ("commit-resume", "consumer groups", True, 45,
     "commit offset 4 explicitly, read it back (OffsetFetch), a new member of the group resumes at 4 and reads 6 records"),
    ("group-rebalance-848", "consumer groups (KIP-848)", False, 60,
     "KIP-848 consumer protocol (group.protocol=consumer): three consumers split 6 partitions 2/2/2; after one leaves, the other two cover all 6 (3/3)"),
    ("commit-resume-848", "consumer groups (KIP-848)", False, 45,
     "commit-resume with the KIP-848 consumer protocol: commit 4, OffsetFetch reads it back, a new member resumes at 4 and reads 6 records"),
    ("idempotent-produce", "idempotence", True, 40,
     "enable.idempotence + acks=all: 10 records exactly once at offsets 0..9"),
    ("transactions", "transactions", True, 45,
     "commit a0..a2, abort b0..b1, commit c0: read_committed sees a0 a1 a2 c0, read_uncommitted sees all 6, end offset 9"),
    ("eos-pipeline", "transactions", False, 60,
     "consume-transform-produce in a group with transactions (offsets committed in the transaction), 2+ commits and 1 abort: read_committed output is V0..V19 once each, group offset 20"),
    ("delete-records", "broker core (DeleteRecords)", True, 40,
     "delete before offset 4 of 10: low watermark 4, earliest offset 4, consumption starts at 4"),
    ("list-offsets", "broker core (ListOffsets)", False, 40,
     "earliest 0, latest 5, max-timestamp -> offset 2 (where the client has it)"),
    ("err-unknown-topic", "error paths", True, 40, "describing/fetching metadata of a missing topic -> UNKNOWN_TOPIC_OR_PARTITION"),
    ("err-record-too-large", "error paths", True, 40,
     "10 kB record to a topic with max.message.bytes=2048 -> MESSAGE_TOO_LARGE (Kafka's RecordTooLargeException), nothing appended"),
    ("err-invalid-config", "error paths", True, 40, "CreateTopics with cleanup.policy=bogus -> INVALID_CONFIG, topic not created"),
    ("err-keyless-compacted", "error paths", False, 40,
     "a record without a key to a cleanup.policy=compact topic -> INVALID_RECORD (Java's InvalidRecordException), nothing appended; a keyed record then lands at offset 0"),
    ("authorized-ops", "admin / authorized operations", False, 45,
     "DescribeCluster, DescribeTopics and DescribeConsumerGroups with includeAuthorizedOperations: every operation of the resource type (the clusters have no authorizer; on the single-node targets PLAINTEXT is User:ANONYMOUS, a super user: CLUSTER has ALTER..IDEMPOTENT_WRITE, TOPIC READ/WRITE/..., GROUP READ/DESCRIBE/DELETE); not requested -> none"),
    ("static-member-848", "consumer groups (KIP-848)", False, 60,
     "KIP-848 static member: a consumer with group.instance.id=X gets the partitions; a second one with the same instance id is refused with UNRELEASED_INSTANCE_ID while the first lives; after the first closes, a third with X gets them"),
    # Security (area SECURITY_AREA): the single-node targets' SSL, MTLS, SASL_PLAINTEXT and SASL_SSL
    # listeners (lib/brokers.py security_props; drivers read COMPAT_SECURITY). Strom gets the same
    # lines (COMPAT_STROM_SECURITY=0 leaves them out); on the clusters these cells are `not yet`.
    ("sec-tls", SECURITY_AREA, False, 40,
     "SSL listener, the broker certificate verified against the test CA (ca.pem): 5 records produced and consumed back"),
    ("sec-mtls", SECURITY_AREA, False, 40,
     "MTLS listener (ssl.client.auth=required): 5 records round-trip with the client certificate (CN=compat-client,OU=compat,O=strom); a connection without a client certificate is refused"),
    ("sec-plain", SECURITY_AREA, False, 40,
     "SASL_PLAINTEXT with PLAIN as alice: 5 records round-trip; alice with a wrong password is refused (SASL_AUTHENTICATION_FAILED, Java's SaslAuthenticationException)"),
    ("sec-scram-256", SECURITY_AREA, False, 40,
     "AlterUserScramCredentials upserts a SCRAM-SHA-256 credential (8192 iterations) for a user of the cell, DescribeUserScramCredentials shows it; 5 records round-trip over SASL_PLAINTEXT as that user; a wrong password is refused; after the credential is deleted the old password is refused"),
    ("sec-scram-512", SECURITY_AREA, False, 40, "same with SCRAM-SHA-512"),
    ("sec-sasl-ssl", SECURITY_AREA, False, 40,
     "SASL_SSL (TLS verified against ca.pem + SCRAM-SHA-512 with a credential made for the cell): 5 records round-trip"),
    ("sec-plaintext-to-tls", SECURITY_AREA, False, 40,
     "a PLAINTEXT client pointed at the SSL listener is not served (times out or is disconnected, bounded to a few seconds); a SASL client pointed at the PLAINTEXT listener fails"),
    ("sec-acl", SECURITY_AREA, False, 60,
     "ACLs (StandardAuthorizer, super.users=User:ANONYMOUS, allow.everyone.if.no.acl.found=true): through PLAINTEXT, CreateAcls ALLOW User:alice WRITE+READ on the cell topic and READ on group <topic>-g (LITERAL); DescribeAcls of the topic shows exactly those 2; alice (SASL PLAIN) produces 5 records and consumes them in <topic>-g; user admin (no ACL, not a super user) is refused: produce TOPIC_AUTHORIZATION_FAILED, group consume GROUP_AUTHORIZATION_FAILED; DeleteAcls of alice's WRITE removes exactly 1 binding, then alice's produce is refused with TOPIC_AUTHORIZATION_FAILED"),
    ("sec-oauth", SECURITY_AREA, False, 60,
     "SASL/OAUTHBEARER on its own OAUTH listener (Kafka's OAuthBearerValidatorCallbackHandler, a JWKS file with an ES256 and an RS256 key, expected aud and iss): with a signed token for sub=alice (ES256; Java also RS256) 5 records round-trip, with ALLOW ACLs for User:alice only on the cell topic (the principal is User:alice; aiokafka: no ACL calls); an expired token, one for another audience, one signed by a key outside the JWKS and an unsigned one (alg none) are each refused the way Kafka 4.4 refuses them as that client reports it (SASL_AUTHENTICATION_FAILED after the RFC 7628 error challenge; README)"),
    ("sec-quota", SECURITY_AREA, False, 60,
     "client quotas through PLAINTEXT on the cell's own client-id entity q-<topic> (never a default entity): AlterClientQuotas producer_byte_rate=20000 and consumer_byte_rate=20000, DescribeClientQuotas with an exact client-id filter shows exactly those 2; a producer with that client.id sends 26 x 10 kB (acks=1), all acknowledged, and observes a broker throttle (throttle_time_ms > 0); a consumer with it reads the 26 back (64 kB fetches) and observes a fetch throttle; after both are removed DescribeClientQuotas shows nothing"),
    # KIP-932 share groups (queues): the Java driver on kafka-clients 4.4 (java-4.4); n/a on the
    # older Java clients, no cell for the other columns (no share consumer). Each scenario first
    # sets the group config share.auto.offset.reset=earliest.
    ("share-consume", "share groups (KIP-932)", False, 60,
     "3 KafkaShareConsumers of one share group (explicit acknowledgement) poll concurrently; 300 records over 3 partitions, all ACCEPTed: each delivered exactly once with delivery count 1, every commitSync partition result succeeds, every consumer gets some"),
    ("share-release", "share groups (KIP-932)", False, 60,
     "a RELEASEd record (offset 1 of 5) is delivered again with delivery count 2; once ACCEPTed nothing more is delivered"),
    ("share-lock-timeout", "share groups (KIP-932)", False, 60,
     "group config share.record.lock.duration.ms=2000 (broker group.share.min.record.lock.duration.ms=1000): consumer A takes records and neither acknowledges nor closes; after the lock expires consumer B of the group gets them with delivery count 2"),
    ("share-dlq", "share groups: dead-letter queue (KIP-1191)", False, 60,
     "dlq.<topic> with errors.deadletterqueue.group.enable=true named by the group's errors.deadletterqueue.topic.name, share.delivery.count.limit=2: a REJECTed record and one RELEASEd past the limit land on it with the __dlq.errors.* headers (topic, partition, offset, group), no key/value, and are not delivered again"),
    ("share-cli", "share groups: admin / CLI", False, 60,
     "kafka-configs --entity-type groups sets share.auto.offset.reset; kafka-share-groups --list, --describe (START-OFFSET, LAG), --describe --members while a consumer runs, --reset-offsets --to-earliest --all-topics --execute (a new consumer reads the records again), --delete-offsets --topic, --delete --group"),
    # A Kafka Streams application (client column kafka-streams-4.4)
    ("streams-wordcount-eos", "streams groups (KIP-1071)", False, 300,
     "Kafka Streams 4.4 word count with group.protocol=streams, exactly_once_v2, a repartition and a state store: 1200 words in, the app killed with SIGKILL after 200 committed updates, 1200 more words, restarted; read_committed output holds each word's counts 1..n exactly once, in order; DescribeStreamsGroup shows 2 subtopologies and, after recovery, a Stable group with all 6 active tasks"),
    # Kafka's own command-line tools (client column kafka-cli)
    ("cli-topics", "admin / metadata", True, 60, "kafka-topics --create/--list/--describe/--delete"),
    ("cli-console", "broker core", True, 60, "kafka-console-producer then kafka-console-consumer --from-beginning --max-messages"),
    ("cli-configs", "admin / metadata", True, 60, "kafka-configs --alter --add-config then --describe shows it"),
    ("cli-configs-brokers", "admin / dynamic broker configs", False, 90,
     "kafka-configs --entity-type brokers: a per-broker value (--entity-name <id>) and a cluster default (--entity-default) are set, shown with sources DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG, a read-only key (log.dirs) is refused, --delete-config removes them"),
    ("cli-configs-groups", "admin / group configs", False, 60,
     "kafka-configs --entity-type groups: consumer.session.timeout.ms and consumer.heartbeat.interval.ms set and described, a value outside the broker's bounds refused (InvalidConfigurationException), --delete-config removes one"),
    ("cli-get-offsets", "broker core (ListOffsets)", False, 60, "kafka-get-offsets latest/earliest after producing 7 records"),
    ("cli-delete-records", "broker core (DeleteRecords)", False, 60, "kafka-delete-records with an offsets JSON file, low watermark moves"),
    ("cli-consumer-groups", "consumer groups", True, 60, "kafka-consumer-groups --list and --describe show the group, its committed offset and lag"),
    ("cli-consumer-groups-848", "consumer groups (KIP-848)", False, 60,
     "a Java console consumer (the column's version) with group.protocol=consumer consumes and commits; kafka-consumer-groups --describe and --describe --members show the member, its assignment, the committed offset and lag"),
    ("cli-consumer-groups-reset", "consumer groups", False, 90,
     "kafka-consumer-groups --reset-offsets --to-earliest / --shift-by 3 / --to-datetime, then --delete-offsets and --delete, each checked with --describe / --list"),
    ("cli-producer-perf", "broker core", False, 60, "kafka-producer-perf-test, 20000 records bounded, all acked"),
    ("cli-consumer-perf", "broker core", False, 60, "kafka-consumer-perf-test reads back the 20000 records"),
    ("cli-transactions", "transactions", False, 60, "kafka-transactions list shows a transactional id we just used"),
    ("cli-acls", SECURITY_AREA, False, 90,
     "kafka-acls (AclCommand) through PLAINTEXT: --add ALLOW User:alice Read+Write on the topic and Read on group <topic>-g, --list shows them; alice (console producer/consumer over SASL_PLAINTEXT PLAIN, --command-config) produces 3 records and consumes them in <topic>-g; --remove --force of Write, --list shows only Read, and alice's console producer gets TopicAuthorizationException"),
    ("cli-quotas", SECURITY_AREA, False, 90,
     "kafka-configs through PLAINTEXT: --alter --entity-type clients --entity-name q-<topic> --add-config producer_byte_rate=1048576,consumer_byte_rate=2097152, --describe shows both; the (user, client-id) entity --entity-type users --entity-name u-<topic> --entity-type clients --entity-name q-<topic> gets producer_byte_rate=524288 and is described; --delete-config producer_byte_rate removes it, --describe shows what is left"),
]
SCENARIO_IDS = [s[0] for s in SCENARIOS]
SECURITY_SCENARIOS = [s[0] for s in SCENARIOS if s[1] == SECURITY_AREA]
# Security scenarios that need the OAUTHBEARER listener (COMPAT_SECURITY "oauth"): `not yet` on a
# broker started without it (Strom with COMPAT_STROM_OAUTH=0; lib/brokers.py STROM_NO_OAUTH).
OAUTH_SCENARIOS = ["sec-oauth"]
SCENARIO = {s[0]: {"id": s[0], "area": s[1], "quick": s[2], "timeout": s[3], "what": s[4]} for s in SCENARIOS}
CLI_SCENARIOS = [s for s in SCENARIO_IDS if s.startswith("cli-")]
STREAMS_SCENARIOS = [s for s in SCENARIO_IDS if s.startswith("streams-")]
SHARE_SCENARIOS = [s for s in SCENARIO_IDS if s.startswith("share-")]
CLIENT_SCENARIOS = [s for s in SCENARIO_IDS if not s.startswith(("cli-", "streams-", "share-"))]
# The Java columns: the share scenarios run on 4.4 and are n/a (said by the driver) on 4.1 / 3.9.
JAVA_SCENARIOS = CLIENT_SCENARIOS + SHARE_SCENARIOS

LOG4J = os.path.join(HERE, "lib", "log4j2.properties")
VENV_PY = os.path.join(CACHE, "venv", "bin", "python")
JAVA_FAST = ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
             f"-Dlog4j2.configurationFile={LOG4J}"]


def _java(libdir):
    cp = os.path.join(CACHE, "java-build", "classes") + ":" + os.path.join(CACHE, libdir, "*")
    return JAVA_FAST + ["-cp", cp, "strom.compat.Main"]


# id -> (label, version string, install part, argv prefix, scenarios)
CLIENTS = {
    "java-4.4": ("Java kafka-clients", "org.apache.kafka:kafka-clients 4.4.0", "java",
                 _java("lib44"), JAVA_SCENARIOS),
    "java-4.1": ("Java kafka-clients", "org.apache.kafka:kafka-clients 4.1.1", "java41",
                 _java("lib41"), JAVA_SCENARIOS),
    "java-3.9": ("Java kafka-clients", "org.apache.kafka:kafka-clients 3.9.1", "java39",
                 _java("lib39"), JAVA_SCENARIOS),
    "kafka-streams-4.4": ("Kafka Streams", "org.apache.kafka:kafka-streams 4.4.0", "java",
                          JAVA_FAST + ["-cp", os.path.join(CACHE, "java-build", "classes") + ":"
                                       + os.path.join(CACHE, "lib44", "*"), "strom.compat.StreamsMain"],
                          STREAMS_SCENARIOS),
    "kafka-cli-4.4": ("Kafka CLI tools", "kafka-tools / kafka_2.13 4.4.0", "java",
                      ["env", "COMPAT_CLI_KAFKA=4.4", VENV_PY, os.path.join(HERE, "python", "cli_driver.py")],
                      CLI_SCENARIOS),
    "kafka-cli": ("Kafka CLI tools", "kafka-tools / kafka_2.13 4.1.1", "java41",
                  ["env", "COMPAT_CLI_KAFKA=4.1", VENV_PY, os.path.join(HERE, "python", "cli_driver.py")],
                  CLI_SCENARIOS),
    "confluent-kafka": ("librdkafka (confluent-kafka-python)", "confluent-kafka 2.16.1", "python",
                        [VENV_PY, os.path.join(HERE, "python", "confluent_driver.py")], CLIENT_SCENARIOS),
    "kcat": ("librdkafka (kcat)", "kcat (Debian)", "kcat",
             [VENV_PY, os.path.join(HERE, "python", "kcat_driver.py")], CLIENT_SCENARIOS),
    "kafka-python": ("kafka-python", "kafka-python 3.0.12", "python",
                     [VENV_PY, os.path.join(HERE, "python", "kafkapython_driver.py")], CLIENT_SCENARIOS),
    "aiokafka": ("aiokafka", "aiokafka 0.14.0", "python",
                 [VENV_PY, os.path.join(HERE, "python", "aiokafka_driver.py")], CLIENT_SCENARIOS),
    "franz-go": ("franz-go", "github.com/twmb/franz-go v1.22.2 (kadm v1.19.0)", "go",
                 [os.path.join(CACHE, "bin", "franz-driver")], CLIENT_SCENARIOS),
    "sarama": ("sarama", "github.com/IBM/sarama v1.61.1", "go",
               [os.path.join(CACHE, "bin", "sarama-driver")], CLIENT_SCENARIOS),
    "kafkajs": ("KafkaJS", "kafkajs 2.2.4 (+kafkajs-snappy 1.1.0)", "node",
                ["node", os.path.join(HERE, "node", "driver.js")], CLIENT_SCENARIOS),
}
CLIENT_IDS = list(CLIENTS)
QUICK_CLIENTS = ["java-4.4", "kafka-cli-4.4", "confluent-kafka", "franz-go", "kafkajs"]
