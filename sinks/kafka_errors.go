package sinks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"github.com/segmentio/kafka-go"
)

// kafkaKind classifies an error of kafka-go into a SendError kind.
func kafkaKind(err error) string {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.RequestTimedOut:
			return KindTimeout
		case kafka.ThrottlingQuotaExceeded:
			return KindThrottled
		case kafka.SASLAuthenticationFailed, kafka.IllegalSASLState, kafka.UnsupportedSASLMechanism,
			kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed,
			kafka.TransactionalIDAuthorizationFailed, kafka.DelegationTokenAuthorizationFailed,
			kafka.UnknownTopicOrPartition, kafka.InvalidTopic, kafka.InvalidRequiredAcks:
			// Configuration, not data: someone must act.
			return KindAuth
		}
		if poisonReason(ke) != "" {
			return KindRejected
		}
		return KindServer
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return KindTimeout
	}
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		host      x509.HostnameError
		invalid   x509.CertificateInvalidError
		alert     tls.AlertError
		record    tls.RecordHeaderError
	)
	if errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &host) ||
		errors.As(err, &invalid) || errors.As(err, &alert) || errors.As(err, &record) {
		return KindAuth // TLS settings or certificates: configuration
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	return KindNetwork
}
