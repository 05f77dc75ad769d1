//! Authorized-operation bit sets (KIP-430): what Metadata, DescribeCluster,
//! DescribeTopicPartitions, DescribeGroups and ConsumerGroupDescribe return when a client asks
//! which operations it may perform on a resource. One bit per ACL operation code (READ 3,
//! WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
//! ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12). There is no authorizer yet, so, as Kafka does
//! without one, a principal may perform every operation the resource type supports (Kafka's
//! `AclEntry.supportedOperations`); the authorizer of the security work will narrow these
//! sets per principal. A field the client did not ask for keeps Kafka's "not requested"
//! value, `i32::MIN` (the messages' default).

const fn bits(ops: &[u8]) -> i32 {
    let mut set = 0i32;
    let mut i = 0;
    while i < ops.len() {
        set |= 1 << ops[i];
        i += 1;
    }
    set
}

/// TOPIC: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub const TOPIC: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);
/// GROUP: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub const GROUP: i32 = bits(&[3, 6, 8, 10, 11]);
/// CLUSTER: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
/// IDEMPOTENT_WRITE.
pub const CLUSTER: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_sets_match_kafka() {
        // The values Kafka 4.x answers without an authorizer.
        assert_eq!(TOPIC, 3576);
        assert_eq!(GROUP, 3400);
        assert_eq!(CLUSTER, 8096);
    }
}
