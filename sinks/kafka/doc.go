// Package kafka is the sink that produces each record as one Kafka
// message, with github.com/segmentio/kafka-go (imported as kafkago, so
// that the name kafka is this package's). docs/KAFKA.md is the user's
// reference: messages, topic templates, settings, metrics.
//
// Guarantees:
//   - At least once: Send returns nil only when the brokers acknowledged
//     every record with the configured ACKS (all in-sync replicas by
//     default) or the record was written to the dead letters. Every
//     message carries the record's stable ID (header skiff-id) so that
//     consumers can deduplicate; kafka-go has no idempotent producer.
//   - A record the brokers can never take (too large, invalid, a templated
//     topic missing for longer than UNKNOWN_TOPIC_TIMEOUT) is isolated by
//     splitting its batch and dead-lettered only when refused alone; its
//     neighbours are delivered. A missing plain TOPIC is a configuration
//     error (KindAuth), retried for ever.
//   - On error Send leaves in the batch only the records that failed, so a
//     retry does not resend what a partition already took; writes are tried
//     once (the delivery loop retries, with backoff and a breaker).
//   - TLS client certificates and SASL passwords are read again for every
//     new connection, so rotated Secrets take effect without a restart.
//
// Concurrency: Send and Close are safe for concurrent use; concurrent Sends
// share kafka-go's Transport (its connections and cluster metadata) and
// make their own produce requests, one per partition of the batch, all in
// flight at once (producer; kafka-go's Writer is not used). New validates the configuration and reads
// the TLS and SASL files but starts no goroutine and opens no connection:
// both begin with the first Send. LoopOptions gives the delivery-loop
// options the configuration sets.
package kafka
