package otlp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiff-dev/skiff/internal/otlpwire"
)

// partialSuccess is ExportLogsServiceResponse.partial_success: how many
// records of an accepted request the endpoint rejected, and why.
type partialSuccess struct {
	rejected int64
	message  string
}

// parseResponse reads the body of a 2xx answer: an
// ExportLogsServiceResponse in the encoding of the request (the answer's
// Content-Type, when it names one, wins). An empty body is a full success.
func parseResponse(body []byte, contentType string, jsonReq bool) (partialSuccess, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return partialSuccess{}, nil
	}
	isJSON := jsonReq
	switch {
	case strings.HasPrefix(contentType, "application/json"):
		isJSON = true
	case strings.HasPrefix(contentType, "application/x-protobuf"):
		isJSON = false
	}
	if isJSON {
		return parseJSONResponse(body)
	}
	return parseProtoResponse(body)
}

func parseProtoResponse(b []byte) (partialSuccess, error) {
	var ps partialSuccess
	for len(b) > 0 {
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return ps, fmt.Errorf("export response: %w", err)
		}
		b = rest
		if f.Num == otlpwire.ResponsePartialSuccess && f.Type == protowire.BytesType {
			if err := ps.parseProto(f.V); err != nil {
				return ps, err
			}
		}
	}
	return ps, nil
}

func (ps *partialSuccess) parseProto(b []byte) error {
	for len(b) > 0 {
		f, rest, err := otlpwire.Consume(b)
		if err != nil {
			return fmt.Errorf("partial success: %w", err)
		}
		b = rest
		switch {
		case f.Num == otlpwire.PartialSuccessRejected && f.Type == protowire.VarintType:
			ps.rejected = int64(f.X)
		case f.Num == otlpwire.PartialSuccessErrorMessage && f.Type == protowire.BytesType:
			ps.message = string(f.V)
		}
	}
	return nil
}

// int64JSON is an int64 of the OTLP JSON mapping: a string, or a number.
type int64JSON int64

func (v *int64JSON) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	*v = int64JSON(n)
	return nil
}

func parseJSONResponse(b []byte) (partialSuccess, error) {
	var r struct {
		PartialSuccess *struct {
			Rejected  int64JSON `json:"rejectedLogRecords"`
			Rejected2 int64JSON `json:"rejected_log_records"`
			Message   string    `json:"errorMessage"`
			Message2  string    `json:"error_message"`
		} `json:"partialSuccess"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return partialSuccess{}, fmt.Errorf("export response: %w", err)
	}
	if r.PartialSuccess == nil {
		return partialSuccess{}, nil
	}
	p := r.PartialSuccess
	return partialSuccess{rejected: int64(max(p.Rejected, p.Rejected2)), message: p.Message + p.Message2}, nil
}

// statusMessage is google.rpc.Status.message of an error answer's body
// (protobuf, or JSON for a JSON request), for debug logs only: it may
// quote the records.
func statusMessage(body []byte, contentType string) string {
	if strings.HasPrefix(contentType, "application/json") {
		var s struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &s) == nil {
			return s.Message
		}
		return ""
	}
	for f, rest, ok := otlpwire.Next(body); ok; f, rest, ok = otlpwire.Next(rest) {
		if f.Num == otlpwire.StatusMessage && f.Type == protowire.BytesType {
			return string(f.V)
		}
	}
	return ""
}
