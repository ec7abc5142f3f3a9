//! Kafka error codes as plain numbers, without a Kafka client library.
//!
//! The numbers are the Kafka protocol's error codes (positive, `0` is no error) and
//! librdkafka's local codes (negative, `-199` to `-138`), as `rd_kafka_resp_err_t` defines them.
//! The table below is generated from librdkafka 2.12.1 (`rdkafka.h` for the numbers,
//! `rd_kafka_err2str` for the descriptions, rust-rdkafka's `RDKafkaErrorCode` for the names);
//! kafka-adapters checks it against the linked librdkafka in its tests
//! (`error_codes_read_as_librdkafka_reads_them`), so a librdkafka upgrade that changes a code
//! fails there.

use std::fmt;

/// A Kafka protocol or librdkafka error code.
///
/// A number, so this crate needs no Kafka client; the named constants cover every code
/// librdkafka 2.12 knows (e.g. [`KafkaErrorCode::MESSAGE_TIMED_OUT`] is `-192`). Displays as
/// librdkafka's error code does: `MessageTimedOut (Local: Message timed out)`. A code outside
/// the table displays with its number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaErrorCode(i32);

impl KafkaErrorCode {
    /// The code with this number (`rd_kafka_resp_err_t`).
    pub const fn new(code: i32) -> Self {
        Self(code)
    }

    /// The number of this code (`rd_kafka_resp_err_t`).
    pub const fn get(self) -> i32 {
        self.0
    }
}

macro_rules! kafka_error_codes {
    ($( $(#[$doc:meta])* ($constant:ident, $number:literal, $name:literal, $description:literal), )*) => {
        impl KafkaErrorCode {
            $( $(#[$doc])* pub const $constant: Self = Self($number); )*

            /// The name of this code, as rust-rdkafka spells it (`MessageTimedOut`), `None` for a
            /// number librdkafka 2.12 does not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $number => Some($name), )*
                    _ => None,
                }
            }

            /// librdkafka's description of this code (`rd_kafka_err2str`: `Local: Message timed
            /// out`), `None` for a number librdkafka 2.12 does not know.
            pub const fn description(self) -> Option<&'static str> {
                match self.0 {
                    $( $number => Some($description), )*
                    _ => None,
                }
            }

            /// Every code in the table, in numeric order.
            pub const ALL: &'static [Self] = &[$( Self::$constant, )*];
        }
    };
}

kafka_error_codes! {
    /// `-199` BadMessage: Local: Bad message format.
    (BAD_MESSAGE, -199, "BadMessage", "Local: Bad message format"),
    /// `-198` BadCompression: Local: Invalid compressed data.
    (BAD_COMPRESSION, -198, "BadCompression", "Local: Invalid compressed data"),
    /// `-197` BrokerDestroy: Local: Broker handle destroyed for termination.
    (BROKER_DESTROY, -197, "BrokerDestroy", "Local: Broker handle destroyed for termination"),
    /// `-196` Fail: Local: Communication failure with broker.
    (FAIL, -196, "Fail", "Local: Communication failure with broker"),
    /// `-195` BrokerTransportFailure: Local: Broker transport failure.
    (BROKER_TRANSPORT_FAILURE, -195, "BrokerTransportFailure", "Local: Broker transport failure"),
    /// `-194` CriticalSystemResource: Local: Critical system resource failure.
    (CRITICAL_SYSTEM_RESOURCE, -194, "CriticalSystemResource", "Local: Critical system resource failure"),
    /// `-193` Resolve: Local: Host resolution failure.
    (RESOLVE, -193, "Resolve", "Local: Host resolution failure"),
    /// `-192` MessageTimedOut: Local: Message timed out.
    (MESSAGE_TIMED_OUT, -192, "MessageTimedOut", "Local: Message timed out"),
    /// `-191` PartitionEOF: Broker: No more messages.
    (PARTITION_EOF, -191, "PartitionEOF", "Broker: No more messages"),
    /// `-190` UnknownPartition: Local: Unknown partition.
    (UNKNOWN_PARTITION, -190, "UnknownPartition", "Local: Unknown partition"),
    /// `-189` FileSystem: Local: File or filesystem error.
    (FILE_SYSTEM, -189, "FileSystem", "Local: File or filesystem error"),
    /// `-188` UnknownTopic: Local: Unknown topic.
    (UNKNOWN_TOPIC, -188, "UnknownTopic", "Local: Unknown topic"),
    /// `-187` AllBrokersDown: Local: All broker connections are down.
    (ALL_BROKERS_DOWN, -187, "AllBrokersDown", "Local: All broker connections are down"),
    /// `-186` InvalidArgument: Local: Invalid argument or configuration.
    (INVALID_ARGUMENT, -186, "InvalidArgument", "Local: Invalid argument or configuration"),
    /// `-185` OperationTimedOut: Local: Timed out.
    (OPERATION_TIMED_OUT, -185, "OperationTimedOut", "Local: Timed out"),
    /// `-184` QueueFull: Local: Queue full.
    (QUEUE_FULL, -184, "QueueFull", "Local: Queue full"),
    /// `-183` ISRInsufficient: Local: ISR count insufficient.
    (ISR_INSUFFICIENT, -183, "ISRInsufficient", "Local: ISR count insufficient"),
    /// `-182` NodeUpdate: Local: Broker node update.
    (NODE_UPDATE, -182, "NodeUpdate", "Local: Broker node update"),
    /// `-181` SSL: Local: SSL error.
    (SSL, -181, "SSL", "Local: SSL error"),
    /// `-180` WaitingForCoordinator: Local: Waiting for coordinator.
    (WAITING_FOR_COORDINATOR, -180, "WaitingForCoordinator", "Local: Waiting for coordinator"),
    /// `-179` UnknownGroup: Local: Unknown group.
    (UNKNOWN_GROUP, -179, "UnknownGroup", "Local: Unknown group"),
    /// `-178` InProgress: Local: Operation in progress.
    (IN_PROGRESS, -178, "InProgress", "Local: Operation in progress"),
    /// `-177` PreviousInProgress: Local: Previous operation in progress.
    (PREVIOUS_IN_PROGRESS, -177, "PreviousInProgress", "Local: Previous operation in progress"),
    /// `-176` ExistingSubscription: Local: Existing subscription.
    (EXISTING_SUBSCRIPTION, -176, "ExistingSubscription", "Local: Existing subscription"),
    /// `-175` AssignPartitions: Local: Assign partitions.
    (ASSIGN_PARTITIONS, -175, "AssignPartitions", "Local: Assign partitions"),
    /// `-174` RevokePartitions: Local: Revoke partitions.
    (REVOKE_PARTITIONS, -174, "RevokePartitions", "Local: Revoke partitions"),
    /// `-173` Conflict: Local: Conflicting use.
    (CONFLICT, -173, "Conflict", "Local: Conflicting use"),
    /// `-172` State: Local: Erroneous state.
    (STATE, -172, "State", "Local: Erroneous state"),
    /// `-171` UnknownProtocol: Local: Unknown protocol.
    (UNKNOWN_PROTOCOL, -171, "UnknownProtocol", "Local: Unknown protocol"),
    /// `-170` NotImplemented: Local: Not implemented.
    (NOT_IMPLEMENTED, -170, "NotImplemented", "Local: Not implemented"),
    /// `-169` Authentication: Local: Authentication failure.
    (AUTHENTICATION, -169, "Authentication", "Local: Authentication failure"),
    /// `-168` NoOffset: Local: No offset stored.
    (NO_OFFSET, -168, "NoOffset", "Local: No offset stored"),
    /// `-167` Outdated: Local: Outdated.
    (OUTDATED, -167, "Outdated", "Local: Outdated"),
    /// `-166` TimedOutQueue: Local: Timed out in queue.
    (TIMED_OUT_QUEUE, -166, "TimedOutQueue", "Local: Timed out in queue"),
    /// `-165` UnsupportedFeature: Local: Required feature not supported by broker.
    (UNSUPPORTED_FEATURE, -165, "UnsupportedFeature", "Local: Required feature not supported by broker"),
    /// `-164` WaitCache: Local: Awaiting cache update.
    (WAIT_CACHE, -164, "WaitCache", "Local: Awaiting cache update"),
    /// `-163` Interrupted: Local: Operation interrupted.
    (INTERRUPTED, -163, "Interrupted", "Local: Operation interrupted"),
    /// `-162` KeySerialization: Local: Key serialization error.
    (KEY_SERIALIZATION, -162, "KeySerialization", "Local: Key serialization error"),
    /// `-161` ValueSerialization: Local: Value serialization error.
    (VALUE_SERIALIZATION, -161, "ValueSerialization", "Local: Value serialization error"),
    /// `-160` KeyDeserialization: Local: Key deserialization error.
    (KEY_DESERIALIZATION, -160, "KeyDeserialization", "Local: Key deserialization error"),
    /// `-159` ValueDeserialization: Local: Value deserialization error.
    (VALUE_DESERIALIZATION, -159, "ValueDeserialization", "Local: Value deserialization error"),
    /// `-158` Partial: Local: Partial response.
    (PARTIAL, -158, "Partial", "Local: Partial response"),
    /// `-157` ReadOnly: Local: Read-only object.
    (READ_ONLY, -157, "ReadOnly", "Local: Read-only object"),
    /// `-156` NoEnt: Local: No such entry.
    (NO_ENT, -156, "NoEnt", "Local: No such entry"),
    /// `-155` Underflow: Local: Read underflow.
    (UNDERFLOW, -155, "Underflow", "Local: Read underflow"),
    /// `-154` InvalidType: Local: Invalid type.
    (INVALID_TYPE, -154, "InvalidType", "Local: Invalid type"),
    /// `-153` Retry: Local: Retry operation.
    (RETRY, -153, "Retry", "Local: Retry operation"),
    /// `-152` PurgeQueue: Local: Purged in queue.
    (PURGE_QUEUE, -152, "PurgeQueue", "Local: Purged in queue"),
    /// `-151` PurgeInflight: Local: Purged in flight.
    (PURGE_INFLIGHT, -151, "PurgeInflight", "Local: Purged in flight"),
    /// `-150` Fatal: Local: Fatal error.
    (FATAL, -150, "Fatal", "Local: Fatal error"),
    /// `-149` Inconsistent: Local: Inconsistent state.
    (INCONSISTENT, -149, "Inconsistent", "Local: Inconsistent state"),
    /// `-148` GaplessGuarantee: Local: Gap-less ordering would not be guaranteed if proceeding.
    (GAPLESS_GUARANTEE, -148, "GaplessGuarantee", "Local: Gap-less ordering would not be guaranteed if proceeding"),
    /// `-147` PollExceeded: Local: Maximum application poll interval (max.poll.interval.ms) exceeded.
    (POLL_EXCEEDED, -147, "PollExceeded", "Local: Maximum application poll interval (max.poll.interval.ms) exceeded"),
    /// `-146` UnknownBroker: Local: Unknown broker.
    (UNKNOWN_BROKER, -146, "UnknownBroker", "Local: Unknown broker"),
    /// `-145` NotConfigured: Local: Functionality not configured.
    (NOT_CONFIGURED, -145, "NotConfigured", "Local: Functionality not configured"),
    /// `-144` Fenced: Local: This instance has been fenced by a newer instance.
    (FENCED, -144, "Fenced", "Local: This instance has been fenced by a newer instance"),
    /// `-143` Application: Local: Application generated error.
    (APPLICATION, -143, "Application", "Local: Application generated error"),
    /// `-142` AssignmentLost: Local: Group partition assignment lost.
    (ASSIGNMENT_LOST, -142, "AssignmentLost", "Local: Group partition assignment lost"),
    /// `-141` Noop: Local: No operation performed.
    (NOOP, -141, "Noop", "Local: No operation performed"),
    /// `-140` AutoOffsetReset: Local: No offset to automatically reset to.
    (AUTO_OFFSET_RESET, -140, "AutoOffsetReset", "Local: No offset to automatically reset to"),
    /// `-139` LogTruncation: Local: Partition log truncation detected.
    (LOG_TRUNCATION, -139, "LogTruncation", "Local: Partition log truncation detected"),
    /// `-138` InvalidDifferentRecord: Local: an invalid record in the same batch caused the failure of this message too.
    (INVALID_DIFFERENT_RECORD, -138, "InvalidDifferentRecord", "Local: an invalid record in the same batch caused the failure of this message too"),
    /// `-137` DestroyBroker: Local: Broker handle destroyed without termination.
    (DESTROY_BROKER, -137, "DestroyBroker", "Local: Broker handle destroyed without termination"),
    /// `-1` Unknown: Unknown broker error.
    (UNKNOWN, -1, "Unknown", "Unknown broker error"),
    /// `0` NoError: Success.
    (NO_ERROR, 0, "NoError", "Success"),
    /// `1` OffsetOutOfRange: Broker: Offset out of range.
    (OFFSET_OUT_OF_RANGE, 1, "OffsetOutOfRange", "Broker: Offset out of range"),
    /// `2` InvalidMessage: Broker: Invalid message.
    (INVALID_MESSAGE, 2, "InvalidMessage", "Broker: Invalid message"),
    /// `3` UnknownTopicOrPartition: Broker: Unknown topic or partition.
    (UNKNOWN_TOPIC_OR_PARTITION, 3, "UnknownTopicOrPartition", "Broker: Unknown topic or partition"),
    /// `4` InvalidMessageSize: Broker: Invalid message size.
    (INVALID_MESSAGE_SIZE, 4, "InvalidMessageSize", "Broker: Invalid message size"),
    /// `5` LeaderNotAvailable: Broker: Leader not available.
    (LEADER_NOT_AVAILABLE, 5, "LeaderNotAvailable", "Broker: Leader not available"),
    /// `6` NotLeaderForPartition: Broker: Not leader for partition.
    (NOT_LEADER_FOR_PARTITION, 6, "NotLeaderForPartition", "Broker: Not leader for partition"),
    /// `7` RequestTimedOut: Broker: Request timed out.
    (REQUEST_TIMED_OUT, 7, "RequestTimedOut", "Broker: Request timed out"),
    /// `8` BrokerNotAvailable: Broker: Broker not available.
    (BROKER_NOT_AVAILABLE, 8, "BrokerNotAvailable", "Broker: Broker not available"),
    /// `9` ReplicaNotAvailable: Broker: Replica not available.
    (REPLICA_NOT_AVAILABLE, 9, "ReplicaNotAvailable", "Broker: Replica not available"),
    /// `10` MessageSizeTooLarge: Broker: Message size too large.
    (MESSAGE_SIZE_TOO_LARGE, 10, "MessageSizeTooLarge", "Broker: Message size too large"),
    /// `11` StaleControllerEpoch: Broker: StaleControllerEpochCode.
    (STALE_CONTROLLER_EPOCH, 11, "StaleControllerEpoch", "Broker: StaleControllerEpochCode"),
    /// `12` OffsetMetadataTooLarge: Broker: Offset metadata string too large.
    (OFFSET_METADATA_TOO_LARGE, 12, "OffsetMetadataTooLarge", "Broker: Offset metadata string too large"),
    /// `13` NetworkException: Broker: Broker disconnected before response received.
    (NETWORK_EXCEPTION, 13, "NetworkException", "Broker: Broker disconnected before response received"),
    /// `14` CoordinatorLoadInProgress: Broker: Coordinator load in progress.
    (COORDINATOR_LOAD_IN_PROGRESS, 14, "CoordinatorLoadInProgress", "Broker: Coordinator load in progress"),
    /// `15` CoordinatorNotAvailable: Broker: Coordinator not available.
    (COORDINATOR_NOT_AVAILABLE, 15, "CoordinatorNotAvailable", "Broker: Coordinator not available"),
    /// `16` NotCoordinator: Broker: Not coordinator.
    (NOT_COORDINATOR, 16, "NotCoordinator", "Broker: Not coordinator"),
    /// `17` InvalidTopic: Broker: Invalid topic.
    (INVALID_TOPIC, 17, "InvalidTopic", "Broker: Invalid topic"),
    /// `18` MessageBatchTooLarge: Broker: Message batch larger than configured server segment size.
    (MESSAGE_BATCH_TOO_LARGE, 18, "MessageBatchTooLarge", "Broker: Message batch larger than configured server segment size"),
    /// `19` NotEnoughReplicas: Broker: Not enough in-sync replicas.
    (NOT_ENOUGH_REPLICAS, 19, "NotEnoughReplicas", "Broker: Not enough in-sync replicas"),
    /// `20` NotEnoughReplicasAfterAppend: Broker: Message(s) written to insufficient number of in-sync replicas.
    (NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20, "NotEnoughReplicasAfterAppend", "Broker: Message(s) written to insufficient number of in-sync replicas"),
    /// `21` InvalidRequiredAcks: Broker: Invalid required acks value.
    (INVALID_REQUIRED_ACKS, 21, "InvalidRequiredAcks", "Broker: Invalid required acks value"),
    /// `22` IllegalGeneration: Broker: Specified group generation id is not valid.
    (ILLEGAL_GENERATION, 22, "IllegalGeneration", "Broker: Specified group generation id is not valid"),
    /// `23` InconsistentGroupProtocol: Broker: Inconsistent group protocol.
    (INCONSISTENT_GROUP_PROTOCOL, 23, "InconsistentGroupProtocol", "Broker: Inconsistent group protocol"),
    /// `24` InvalidGroupId: Broker: Invalid group.id.
    (INVALID_GROUP_ID, 24, "InvalidGroupId", "Broker: Invalid group.id"),
    /// `25` UnknownMemberId: Broker: Unknown member.
    (UNKNOWN_MEMBER_ID, 25, "UnknownMemberId", "Broker: Unknown member"),
    /// `26` InvalidSessionTimeout: Broker: Invalid session timeout.
    (INVALID_SESSION_TIMEOUT, 26, "InvalidSessionTimeout", "Broker: Invalid session timeout"),
    /// `27` RebalanceInProgress: Broker: Group rebalance in progress.
    (REBALANCE_IN_PROGRESS, 27, "RebalanceInProgress", "Broker: Group rebalance in progress"),
    /// `28` InvalidCommitOffsetSize: Broker: Commit offset data size is not valid.
    (INVALID_COMMIT_OFFSET_SIZE, 28, "InvalidCommitOffsetSize", "Broker: Commit offset data size is not valid"),
    /// `29` TopicAuthorizationFailed: Broker: Topic authorization failed.
    (TOPIC_AUTHORIZATION_FAILED, 29, "TopicAuthorizationFailed", "Broker: Topic authorization failed"),
    /// `30` GroupAuthorizationFailed: Broker: Group authorization failed.
    (GROUP_AUTHORIZATION_FAILED, 30, "GroupAuthorizationFailed", "Broker: Group authorization failed"),
    /// `31` ClusterAuthorizationFailed: Broker: Cluster authorization failed.
    (CLUSTER_AUTHORIZATION_FAILED, 31, "ClusterAuthorizationFailed", "Broker: Cluster authorization failed"),
    /// `32` InvalidTimestamp: Broker: Invalid timestamp.
    (INVALID_TIMESTAMP, 32, "InvalidTimestamp", "Broker: Invalid timestamp"),
    /// `33` UnsupportedSASLMechanism: Broker: Unsupported SASL mechanism.
    (UNSUPPORTED_SASL_MECHANISM, 33, "UnsupportedSASLMechanism", "Broker: Unsupported SASL mechanism"),
    /// `34` IllegalSASLState: Broker: Request not valid in current SASL state.
    (ILLEGAL_SASL_STATE, 34, "IllegalSASLState", "Broker: Request not valid in current SASL state"),
    /// `35` UnsupportedVersion: Broker: API version not supported.
    (UNSUPPORTED_VERSION, 35, "UnsupportedVersion", "Broker: API version not supported"),
    /// `36` TopicAlreadyExists: Broker: Topic already exists.
    (TOPIC_ALREADY_EXISTS, 36, "TopicAlreadyExists", "Broker: Topic already exists"),
    /// `37` InvalidPartitions: Broker: Invalid number of partitions.
    (INVALID_PARTITIONS, 37, "InvalidPartitions", "Broker: Invalid number of partitions"),
    /// `38` InvalidReplicationFactor: Broker: Invalid replication factor.
    (INVALID_REPLICATION_FACTOR, 38, "InvalidReplicationFactor", "Broker: Invalid replication factor"),
    /// `39` InvalidReplicaAssignment: Broker: Invalid replica assignment.
    (INVALID_REPLICA_ASSIGNMENT, 39, "InvalidReplicaAssignment", "Broker: Invalid replica assignment"),
    /// `40` InvalidConfig: Broker: Configuration is invalid.
    (INVALID_CONFIG, 40, "InvalidConfig", "Broker: Configuration is invalid"),
    /// `41` NotController: Broker: Not controller for cluster.
    (NOT_CONTROLLER, 41, "NotController", "Broker: Not controller for cluster"),
    /// `42` InvalidRequest: Broker: Invalid request.
    (INVALID_REQUEST, 42, "InvalidRequest", "Broker: Invalid request"),
    /// `43` UnsupportedForMessageFormat: Broker: Message format on broker does not support request.
    (UNSUPPORTED_FOR_MESSAGE_FORMAT, 43, "UnsupportedForMessageFormat", "Broker: Message format on broker does not support request"),
    /// `44` PolicyViolation: Broker: Policy violation.
    (POLICY_VIOLATION, 44, "PolicyViolation", "Broker: Policy violation"),
    /// `45` OutOfOrderSequenceNumber: Broker: Broker received an out of order sequence number.
    (OUT_OF_ORDER_SEQUENCE_NUMBER, 45, "OutOfOrderSequenceNumber", "Broker: Broker received an out of order sequence number"),
    /// `46` DuplicateSequenceNumber: Broker: Broker received a duplicate sequence number.
    (DUPLICATE_SEQUENCE_NUMBER, 46, "DuplicateSequenceNumber", "Broker: Broker received a duplicate sequence number"),
    /// `47` InvalidProducerEpoch: Broker: Producer attempted an operation with an old epoch.
    (INVALID_PRODUCER_EPOCH, 47, "InvalidProducerEpoch", "Broker: Producer attempted an operation with an old epoch"),
    /// `48` InvalidTransactionalState: Broker: Producer attempted a transactional operation in an invalid state.
    (INVALID_TRANSACTIONAL_STATE, 48, "InvalidTransactionalState", "Broker: Producer attempted a transactional operation in an invalid state"),
    /// `49` InvalidProducerIdMapping: Broker: Producer attempted to use a producer id which is not currently assigned to its transactional id.
    (INVALID_PRODUCER_ID_MAPPING, 49, "InvalidProducerIdMapping", "Broker: Producer attempted to use a producer id which is not currently assigned to its transactional id"),
    /// `50` InvalidTransactionTimeout: Broker: Transaction timeout is larger than the maximum value allowed by the broker's max.transaction.timeout.ms.
    (INVALID_TRANSACTION_TIMEOUT, 50, "InvalidTransactionTimeout", "Broker: Transaction timeout is larger than the maximum value allowed by the broker's max.transaction.timeout.ms"),
    /// `51` ConcurrentTransactions: Broker: Producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.
    (CONCURRENT_TRANSACTIONS, 51, "ConcurrentTransactions", "Broker: Producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing"),
    /// `52` TransactionCoordinatorFenced: Broker: Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer.
    (TRANSACTION_COORDINATOR_FENCED, 52, "TransactionCoordinatorFenced", "Broker: Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer"),
    /// `53` TransactionalIdAuthorizationFailed: Broker: Transactional Id authorization failed.
    (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 53, "TransactionalIdAuthorizationFailed", "Broker: Transactional Id authorization failed"),
    /// `54` SecurityDisabled: Broker: Security features are disabled.
    (SECURITY_DISABLED, 54, "SecurityDisabled", "Broker: Security features are disabled"),
    /// `55` OperationNotAttempted: Broker: Operation not attempted.
    (OPERATION_NOT_ATTEMPTED, 55, "OperationNotAttempted", "Broker: Operation not attempted"),
    /// `56` KafkaStorageError: Broker: Disk error when trying to access log file on disk.
    (KAFKA_STORAGE_ERROR, 56, "KafkaStorageError", "Broker: Disk error when trying to access log file on disk"),
    /// `57` LogDirNotFound: Broker: The user-specified log directory is not found in the broker config.
    (LOG_DIR_NOT_FOUND, 57, "LogDirNotFound", "Broker: The user-specified log directory is not found in the broker config"),
    /// `58` SaslAuthenticationFailed: Broker: SASL Authentication failed.
    (SASL_AUTHENTICATION_FAILED, 58, "SaslAuthenticationFailed", "Broker: SASL Authentication failed"),
    /// `59` UnknownProducerId: Broker: Unknown Producer Id.
    (UNKNOWN_PRODUCER_ID, 59, "UnknownProducerId", "Broker: Unknown Producer Id"),
    /// `60` ReassignmentInProgress: Broker: Partition reassignment is in progress.
    (REASSIGNMENT_IN_PROGRESS, 60, "ReassignmentInProgress", "Broker: Partition reassignment is in progress"),
    /// `61` DelegationTokenAuthDisabled: Broker: Delegation Token feature is not enabled.
    (DELEGATION_TOKEN_AUTH_DISABLED, 61, "DelegationTokenAuthDisabled", "Broker: Delegation Token feature is not enabled"),
    /// `62` DelegationTokenNotFound: Broker: Delegation Token is not found on server.
    (DELEGATION_TOKEN_NOT_FOUND, 62, "DelegationTokenNotFound", "Broker: Delegation Token is not found on server"),
    /// `63` DelegationTokenOwnerMismatch: Broker: Specified Principal is not valid Owner/Renewer.
    (DELEGATION_TOKEN_OWNER_MISMATCH, 63, "DelegationTokenOwnerMismatch", "Broker: Specified Principal is not valid Owner/Renewer"),
    /// `64` DelegationTokenRequestNotAllowed: Broker: Delegation Token requests are not allowed on this connection.
    (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, 64, "DelegationTokenRequestNotAllowed", "Broker: Delegation Token requests are not allowed on this connection"),
    /// `65` DelegationTokenAuthorizationFailed: Broker: Delegation Token authorization failed.
    (DELEGATION_TOKEN_AUTHORIZATION_FAILED, 65, "DelegationTokenAuthorizationFailed", "Broker: Delegation Token authorization failed"),
    /// `66` DelegationTokenExpired: Broker: Delegation Token is expired.
    (DELEGATION_TOKEN_EXPIRED, 66, "DelegationTokenExpired", "Broker: Delegation Token is expired"),
    /// `67` InvalidPrincipalType: Broker: Supplied principalType is not supported.
    (INVALID_PRINCIPAL_TYPE, 67, "InvalidPrincipalType", "Broker: Supplied principalType is not supported"),
    /// `68` NonEmptyGroup: Broker: The group is not empty.
    (NON_EMPTY_GROUP, 68, "NonEmptyGroup", "Broker: The group is not empty"),
    /// `69` GroupIdNotFound: Broker: The group id does not exist.
    (GROUP_ID_NOT_FOUND, 69, "GroupIdNotFound", "Broker: The group id does not exist"),
    /// `70` FetchSessionIdNotFound: Broker: The fetch session ID was not found.
    (FETCH_SESSION_ID_NOT_FOUND, 70, "FetchSessionIdNotFound", "Broker: The fetch session ID was not found"),
    /// `71` InvalidFetchSessionEpoch: Broker: The fetch session epoch is invalid.
    (INVALID_FETCH_SESSION_EPOCH, 71, "InvalidFetchSessionEpoch", "Broker: The fetch session epoch is invalid"),
    /// `72` ListenerNotFound: Broker: No matching listener.
    (LISTENER_NOT_FOUND, 72, "ListenerNotFound", "Broker: No matching listener"),
    /// `73` TopicDeletionDisabled: Broker: Topic deletion is disabled.
    (TOPIC_DELETION_DISABLED, 73, "TopicDeletionDisabled", "Broker: Topic deletion is disabled"),
    /// `74` FencedLeaderEpoch: Broker: Leader epoch is older than broker epoch.
    (FENCED_LEADER_EPOCH, 74, "FencedLeaderEpoch", "Broker: Leader epoch is older than broker epoch"),
    /// `75` UnknownLeaderEpoch: Broker: Leader epoch is newer than broker epoch.
    (UNKNOWN_LEADER_EPOCH, 75, "UnknownLeaderEpoch", "Broker: Leader epoch is newer than broker epoch"),
    /// `76` UnsupportedCompressionType: Broker: Unsupported compression type.
    (UNSUPPORTED_COMPRESSION_TYPE, 76, "UnsupportedCompressionType", "Broker: Unsupported compression type"),
    /// `77` StaleBrokerEpoch: Broker: Broker epoch has changed.
    (STALE_BROKER_EPOCH, 77, "StaleBrokerEpoch", "Broker: Broker epoch has changed"),
    /// `78` OffsetNotAvailable: Broker: Leader high watermark is not caught up.
    (OFFSET_NOT_AVAILABLE, 78, "OffsetNotAvailable", "Broker: Leader high watermark is not caught up"),
    /// `79` MemberIdRequired: Broker: Group member needs a valid member ID.
    (MEMBER_ID_REQUIRED, 79, "MemberIdRequired", "Broker: Group member needs a valid member ID"),
    /// `80` PreferredLeaderNotAvailable: Broker: Preferred leader was not available.
    (PREFERRED_LEADER_NOT_AVAILABLE, 80, "PreferredLeaderNotAvailable", "Broker: Preferred leader was not available"),
    /// `81` GroupMaxSizeReached: Broker: Consumer group has reached maximum size.
    (GROUP_MAX_SIZE_REACHED, 81, "GroupMaxSizeReached", "Broker: Consumer group has reached maximum size"),
    /// `82` FencedInstanceId: Broker: Static consumer fenced by other consumer with same group.instance.id.
    (FENCED_INSTANCE_ID, 82, "FencedInstanceId", "Broker: Static consumer fenced by other consumer with same group.instance.id"),
    /// `83` EligibleLeadersNotAvailable: Broker: Eligible partition leaders are not available.
    (ELIGIBLE_LEADERS_NOT_AVAILABLE, 83, "EligibleLeadersNotAvailable", "Broker: Eligible partition leaders are not available"),
    /// `84` ElectionNotNeeded: Broker: Leader election not needed for topic partition.
    (ELECTION_NOT_NEEDED, 84, "ElectionNotNeeded", "Broker: Leader election not needed for topic partition"),
    /// `85` NoReassignmentInProgress: Broker: No partition reassignment is in progress.
    (NO_REASSIGNMENT_IN_PROGRESS, 85, "NoReassignmentInProgress", "Broker: No partition reassignment is in progress"),
    /// `86` GroupSubscribedToTopic: Broker: Deleting offsets of a topic while the consumer group is subscribed to it.
    (GROUP_SUBSCRIBED_TO_TOPIC, 86, "GroupSubscribedToTopic", "Broker: Deleting offsets of a topic while the consumer group is subscribed to it"),
    /// `87` InvalidRecord: Broker: Broker failed to validate record.
    (INVALID_RECORD, 87, "InvalidRecord", "Broker: Broker failed to validate record"),
    /// `88` UnstableOffsetCommit: Broker: There are unstable offsets that need to be cleared.
    (UNSTABLE_OFFSET_COMMIT, 88, "UnstableOffsetCommit", "Broker: There are unstable offsets that need to be cleared"),
    /// `89` ThrottlingQuotaExceeded: Broker: Throttling quota has been exceeded.
    (THROTTLING_QUOTA_EXCEEDED, 89, "ThrottlingQuotaExceeded", "Broker: Throttling quota has been exceeded"),
    /// `90` ProducerFenced: Broker: There is a newer producer with the same transactionalId which fences the current one.
    (PRODUCER_FENCED, 90, "ProducerFenced", "Broker: There is a newer producer with the same transactionalId which fences the current one"),
    /// `91` ResourceNotFound: Broker: Request illegally referred to resource that does not exist.
    (RESOURCE_NOT_FOUND, 91, "ResourceNotFound", "Broker: Request illegally referred to resource that does not exist"),
    /// `92` DuplicateResource: Broker: Request illegally referred to the same resource twice.
    (DUPLICATE_RESOURCE, 92, "DuplicateResource", "Broker: Request illegally referred to the same resource twice"),
    /// `93` UnacceptableCredential: Broker: Requested credential would not meet criteria for acceptability.
    (UNACCEPTABLE_CREDENTIAL, 93, "UnacceptableCredential", "Broker: Requested credential would not meet criteria for acceptability"),
    /// `94` InconsistentVoterSet: Broker: Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters.
    (INCONSISTENT_VOTER_SET, 94, "InconsistentVoterSet", "Broker: Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters"),
    /// `95` InvalidUpdateVersion: Broker: Invalid update version.
    (INVALID_UPDATE_VERSION, 95, "InvalidUpdateVersion", "Broker: Invalid update version"),
    /// `96` FeatureUpdateFailed: Broker: Unable to update finalized features due to server error.
    (FEATURE_UPDATE_FAILED, 96, "FeatureUpdateFailed", "Broker: Unable to update finalized features due to server error"),
    /// `97` PrincipalDeserializationFailure: Broker: Request principal deserialization failed during forwarding.
    (PRINCIPAL_DESERIALIZATION_FAILURE, 97, "PrincipalDeserializationFailure", "Broker: Request principal deserialization failed during forwarding"),
    /// `100` UnknownTopicId: Broker: Unknown topic id.
    (UNKNOWN_TOPIC_ID, 100, "UnknownTopicId", "Broker: Unknown topic id"),
    /// `110` FencedMemberEpoch: Broker: The member epoch is fenced by the group coordinator.
    (FENCED_MEMBER_EPOCH, 110, "FencedMemberEpoch", "Broker: The member epoch is fenced by the group coordinator"),
    /// `111` UnreleasedInstanceId: Broker: The instance ID is still used by another member in the consumer group.
    (UNRELEASED_INSTANCE_ID, 111, "UnreleasedInstanceId", "Broker: The instance ID is still used by another member in the consumer group"),
    /// `112` UnsupportedAssignor: Broker: The assignor or its version range is not supported by the consumer group.
    (UNSUPPORTED_ASSIGNOR, 112, "UnsupportedAssignor", "Broker: The assignor or its version range is not supported by the consumer group"),
    /// `113` StaleMemberEpoch: Broker: The member epoch is stale.
    (STALE_MEMBER_EPOCH, 113, "StaleMemberEpoch", "Broker: The member epoch is stale"),
    /// `117` UnknownSubscriptionId: Broker: Client sent a push telemetry request with an invalid or outdated subscription ID.
    (UNKNOWN_SUBSCRIPTION_ID, 117, "UnknownSubscriptionId", "Broker: Client sent a push telemetry request with an invalid or outdated subscription ID"),
    /// `118` TelemetryTooLarge: Broker: Client sent a push telemetry request larger than the maximum size the broker will accept.
    (TELEMETRY_TOO_LARGE, 118, "TelemetryTooLarge", "Broker: Client sent a push telemetry request larger than the maximum size the broker will accept"),
    /// `129` RebootstrapRequired: Broker: Client metadata is stale, client should rebootstrap to obtain new metadata.
    (REBOOTSTRAP_REQUIRED, 129, "RebootstrapRequired", "Broker: Client metadata is stale, client should rebootstrap to obtain new metadata"),
}

impl fmt::Display for KafkaErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.description()) {
            (Some(name), Some(description)) => write!(f, "{name} ({description})"),
            _ => write!(f, "error code {} (Unknown error)", self.0),
        }
    }
}

impl fmt::Debug for KafkaErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "KafkaErrorCode({})", self.0),
        }
    }
}

/// Whether an operation that failed with `code` may succeed when tried again.
///
/// Transient conditions (timeouts, leadership moves, brokers down, full queues, purges at
/// shutdown) are retriable. A missing topic or partition, an oversized or invalid record,
/// authorization and configuration errors are not: retrying them only delays the dead-letter
/// decision. (librdkafka reports `UnknownTopicOrPartition` for a record only after the topic
/// stayed missing for `topic.metadata.propagation.max.ms`, so it is not a stale-metadata blip.)
pub fn is_retriable_code(code: KafkaErrorCode) -> bool {
    type C = KafkaErrorCode;
    matches!(
        code,
        C::BROKER_TRANSPORT_FAILURE
            | C::RESOLVE
            | C::MESSAGE_TIMED_OUT
            | C::ALL_BROKERS_DOWN
            | C::OPERATION_TIMED_OUT
            | C::QUEUE_FULL
            | C::ISR_INSUFFICIENT
            | C::WAITING_FOR_COORDINATOR
            | C::IN_PROGRESS
            | C::PREVIOUS_IN_PROGRESS
            | C::TIMED_OUT_QUEUE
            | C::RETRY
            | C::PURGE_QUEUE
            | C::PURGE_INFLIGHT
            | C::LEADER_NOT_AVAILABLE
            | C::NOT_LEADER_FOR_PARTITION
            | C::REQUEST_TIMED_OUT
            | C::BROKER_NOT_AVAILABLE
            | C::REPLICA_NOT_AVAILABLE
            | C::NETWORK_EXCEPTION
            | C::COORDINATOR_LOAD_IN_PROGRESS
            | C::COORDINATOR_NOT_AVAILABLE
            | C::NOT_COORDINATOR
            | C::NOT_ENOUGH_REPLICAS
            | C::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | C::REBALANCE_IN_PROGRESS
            | C::KAFKA_STORAGE_ERROR
            | C::FENCED_LEADER_EPOCH
            | C::UNKNOWN_LEADER_EPOCH
            | C::OFFSET_NOT_AVAILABLE
            | C::PREFERRED_LEADER_NOT_AVAILABLE
            | C::UNSTABLE_OFFSET_COMMIT
            | C::THROTTLING_QUOTA_EXCEEDED
            // Another record of the same batch was invalid; this one was not written but is fine.
            | C::INVALID_DIFFERENT_RECORD
    )
}

/// Whether a produce error with `code` refuses that one record for good: sending it again
/// fails again, while other records (to other topics, or smaller) may pass.
///
/// The output topic does not exist (librdkafka reports that only after the topic stayed missing
/// for `topic.metadata.propagation.max.ms`) or is not writable for this client, or the record
/// is too large (the producer's `message.max.bytes`, the topic's `max.message.bytes`), invalid
/// (e.g. a compacted topic and no key) or has a timestamp the topic does not accept.
pub fn is_record_refusal_code(code: KafkaErrorCode) -> bool {
    type C = KafkaErrorCode;
    matches!(
        code,
        C::UNKNOWN_TOPIC
            | C::UNKNOWN_TOPIC_OR_PARTITION
            | C::UNKNOWN_PARTITION
            | C::INVALID_TOPIC
            | C::TOPIC_AUTHORIZATION_FAILED
            | C::MESSAGE_SIZE_TOO_LARGE
            | C::MESSAGE_BATCH_TOO_LARGE
            | C::INVALID_MESSAGE_SIZE
            | C::INVALID_RECORD
            | C::INVALID_TIMESTAMP
    )
}

/// Whether `code` says the cluster refuses this client for good: authentication failed
/// (credentials, SASL mechanism) or an ACL is missing (topic, group, transactional id,
/// cluster). Retrying only repeats the refusal until an operator changes credentials or ACLs.
pub fn is_access_refusal_code(code: KafkaErrorCode) -> bool {
    type C = KafkaErrorCode;
    matches!(
        code,
        C::AUTHENTICATION
            | C::SASL_AUTHENTICATION_FAILED
            | C::TOPIC_AUTHORIZATION_FAILED
            | C::GROUP_AUTHORIZATION_FAILED
            | C::CLUSTER_AUTHORIZATION_FAILED
            | C::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )
}

/// Whether `code` refuses a record for its size: the producer's `message.max.bytes`
/// (`MessageSizeTooLarge`, 10), the broker's `max.message.bytes` of the topic
/// (`MessageBatchTooLarge`, 18) or an invalid size (`InvalidMessageSize`, 4).
pub fn is_record_too_large_code(code: KafkaErrorCode) -> bool {
    type C = KafkaErrorCode;
    matches!(
        code,
        C::MESSAGE_SIZE_TOO_LARGE | C::MESSAGE_BATCH_TOO_LARGE | C::INVALID_MESSAGE_SIZE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_refusals_are_authentication_and_authorization_failures_only() {
        type C = KafkaErrorCode;
        for code in [
            C::AUTHENTICATION,
            C::TOPIC_AUTHORIZATION_FAILED,
            C::GROUP_AUTHORIZATION_FAILED,
        ] {
            assert!(
                is_access_refusal_code(code) && !is_retriable_code(code),
                "{code:?}"
            );
        }
        for code in [
            C::ALL_BROKERS_DOWN,
            C::BROKER_TRANSPORT_FAILURE,
            C::UNKNOWN_TOPIC_OR_PARTITION,
        ] {
            assert!(!is_access_refusal_code(code), "{code:?}");
        }
    }

    #[test]
    fn codes_display_as_librdkafka_names_and_describes_them() {
        assert_eq!(
            KafkaErrorCode::MESSAGE_TIMED_OUT.to_string(),
            "MessageTimedOut (Local: Message timed out)"
        );
        assert_eq!(
            KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED.to_string(),
            "TopicAuthorizationFailed (Broker: Topic authorization failed)"
        );
        assert_eq!(KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE.get(), 10);
        assert_eq!(
            format!("{:?}", KafkaErrorCode::QUEUE_FULL),
            "QueueFull(-184)"
        );
    }

    #[test]
    fn an_unknown_number_still_displays_with_its_number() {
        let code = KafkaErrorCode::new(4242);
        assert_eq!(code.name(), None);
        assert_eq!(code.to_string(), "error code 4242 (Unknown error)");
        assert_eq!(format!("{code:?}"), "KafkaErrorCode(4242)");
        assert!(!is_retriable_code(code) && !is_record_refusal_code(code));
    }

    #[test]
    fn the_table_has_one_entry_per_number_in_order() {
        assert!(KafkaErrorCode::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(KafkaErrorCode::ALL.iter().all(|code| code.name().is_some()));
    }

    #[test]
    fn transient_broker_conditions_are_retriable() {
        for code in [
            KafkaErrorCode::MESSAGE_TIMED_OUT,
            KafkaErrorCode::NOT_LEADER_FOR_PARTITION,
            KafkaErrorCode::QUEUE_FULL,
            KafkaErrorCode::ALL_BROKERS_DOWN,
        ] {
            assert!(is_retriable_code(code), "{code:?}");
        }
    }

    #[test]
    fn records_and_topics_that_cannot_succeed_are_not_retriable() {
        for code in [
            KafkaErrorCode::UNKNOWN_TOPIC,
            KafkaErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            KafkaErrorCode::UNKNOWN_PARTITION,
            KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE,
            KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED,
            KafkaErrorCode::INVALID_RECORD,
        ] {
            assert!(!is_retriable_code(code), "{code:?}");
        }
    }
}
