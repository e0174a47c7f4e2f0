package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/skiff-dev/skiff/sinks"
)

// errorKind classifies an error of kafka-go into a SendError kind.
func errorKind(err error) string {
	var ke kafkago.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafkago.RequestTimedOut:
			return sinks.KindTimeout
		case kafkago.ThrottlingQuotaExceeded:
			return sinks.KindThrottled
		case kafkago.SASLAuthenticationFailed, kafkago.IllegalSASLState, kafkago.UnsupportedSASLMechanism,
			kafkago.TopicAuthorizationFailed, kafkago.ClusterAuthorizationFailed,
			kafkago.TransactionalIDAuthorizationFailed, kafkago.DelegationTokenAuthorizationFailed,
			kafkago.UnknownTopicOrPartition, kafkago.InvalidTopic, kafkago.InvalidRequiredAcks:
			// Configuration, not data: someone must act.
			return sinks.KindAuth
		}
		if poisonReason(ke) != "" {
			return sinks.KindRejected
		}
		return sinks.KindServer
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return sinks.KindTimeout
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
		return sinks.KindAuth // TLS settings or certificates: configuration
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return sinks.KindTimeout
	}
	return sinks.KindNetwork
}
