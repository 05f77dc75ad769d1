//! The one place internal errors become wire error codes.

use crate::broker::AdminError;
use crate::log::producer_state::SequenceError;
use crate::log::LogError;
use crate::protocol::batch::BatchError;
use crate::protocol::WireError;

pub fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::OffsetOutOfRange { .. } => WireError::OffsetOutOfRange.code(),
        LogError::NotLeader(_) => WireError::NotLeaderOrFollower.code(),
        LogError::NotEnoughReplicas { .. } => WireError::NotEnoughReplicas.code(),
        LogError::InvalidBatch(BatchError::Invalid(_)) => WireError::InvalidRecord.code(),
        LogError::InvalidBatch(_) => WireError::CorruptMessage.code(),
        LogError::RecordTooLarge { .. } => WireError::MessageTooLarge.code(),
        LogError::InvalidRecords(_) => WireError::InvalidRecord.code(),
        LogError::Poisoned(_) | LogError::Offline(_) | LogError::Io(_) => {
            WireError::KafkaStorageError.code()
        }
        LogError::Sequence(SequenceError::InvalidEpoch { .. }) => {
            WireError::InvalidProducerEpoch.code()
        }
        LogError::Sequence(SequenceError::OutOfOrder { .. }) => {
            WireError::OutOfOrderSequenceNumber.code()
        }
    }
}

pub fn epoch_error_code(e: crate::replica::EpochMismatch) -> i16 {
    match e {
        crate::replica::EpochMismatch::Fenced => WireError::FencedLeaderEpoch.code(),
        crate::replica::EpochMismatch::Unknown => WireError::UnknownLeaderEpoch.code(),
    }
}

pub fn admin_error_code(e: &AdminError) -> i16 {
    match e {
        AdminError::TopicExists(_) => WireError::TopicAlreadyExists.code(),
        AdminError::UnknownTopic => WireError::UnknownTopicOrPartition.code(),
        AdminError::InvalidTopic(_) => WireError::InvalidTopicException.code(),
        AdminError::InvalidPartitions(_) => WireError::InvalidPartitions.code(),
        AdminError::InvalidReplicationFactor(_) => WireError::InvalidReplicationFactor.code(),
        AdminError::InvalidReplicaAssignment(_) => WireError::InvalidReplicaAssignment.code(),
        AdminError::InvalidConfig(_) => WireError::InvalidConfig.code(),
        AdminError::PolicyViolation(_) => WireError::PolicyViolation.code(),
        AdminError::DeletionDisabled => WireError::TopicDeletionDisabled.code(),
        AdminError::InvalidRequest(_) => WireError::InvalidRequest.code(),
        AdminError::Storage(_) => WireError::KafkaStorageError.code(),
        AdminError::CoordinatorNotAvailable(_) => WireError::CoordinatorNotAvailable.code(),
    }
}
