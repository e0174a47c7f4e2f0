package otlpwire

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers of the OTLP logs messages
// (opentelemetry/proto/collector/logs/v1/logs_service.proto,
// logs/v1/logs.proto, common/v1/common.proto, resource/v1/resource.proto)
// and of google.rpc.Status, the body of an OTLP/HTTP error answer.
const (
	// ExportLogsServiceRequest
	RequestResourceLogs protowire.Number = 1

	// ResourceLogs
	ResourceLogsResource  protowire.Number = 1
	ResourceLogsScopeLogs protowire.Number = 2
	ResourceLogsSchemaURL protowire.Number = 3

	// ScopeLogs
	ScopeLogsScope      protowire.Number = 1
	ScopeLogsLogRecords protowire.Number = 2
	ScopeLogsSchemaURL  protowire.Number = 3

	// Resource
	ResourceAttributes protowire.Number = 1
	ResourceDropped    protowire.Number = 2 // dropped_attributes_count
	ResourceEntityRefs protowire.Number = 3

	// EntityRef
	EntityRefSchemaURL       protowire.Number = 1
	EntityRefType            protowire.Number = 2
	EntityRefIDKeys          protowire.Number = 3
	EntityRefDescriptionKeys protowire.Number = 4

	// InstrumentationScope
	ScopeName       protowire.Number = 1
	ScopeVersion    protowire.Number = 2
	ScopeAttributes protowire.Number = 3
	ScopeDropped    protowire.Number = 4 // dropped_attributes_count

	// LogRecord
	LogTime           protowire.Number = 1 // time_unix_nano
	LogSeverityNumber protowire.Number = 2
	LogSeverityText   protowire.Number = 3
	LogBody           protowire.Number = 5
	LogAttributes     protowire.Number = 6
	LogDropped        protowire.Number = 7 // dropped_attributes_count
	LogFlags          protowire.Number = 8
	LogTraceID        protowire.Number = 9
	LogSpanID         protowire.Number = 10
	LogObservedTime   protowire.Number = 11 // observed_time_unix_nano
	LogEventName      protowire.Number = 12

	// AnyValue, whose oneof value is one of these
	AnyString protowire.Number = 1
	AnyBool   protowire.Number = 2
	AnyInt    protowire.Number = 3
	AnyDouble protowire.Number = 4
	AnyArray  protowire.Number = 5
	AnyKvlist protowire.Number = 6
	AnyBytes  protowire.Number = 7

	// ArrayValue and KeyValueList: the repeated values (AnyValues,
	// KeyValues)
	ListValues protowire.Number = 1

	// KeyValue
	KeyValueKey   protowire.Number = 1
	KeyValueValue protowire.Number = 2

	// ExportLogsServiceResponse
	ResponsePartialSuccess protowire.Number = 1

	// ExportLogsPartialSuccess
	PartialSuccessRejected     protowire.Number = 1 // rejected_log_records
	PartialSuccessErrorMessage protowire.Number = 2

	// google.rpc.Status
	StatusCode    protowire.Number = 1
	StatusMessage protowire.Number = 2
)

// Lengths of LogRecord.trace_id and span_id when they are set.
const (
	TraceIDLen = 16
	SpanIDLen  = 8
)
