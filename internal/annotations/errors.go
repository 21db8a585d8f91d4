package annotations

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the errors Parse returns: one FieldError per problem, each
// naming the key, the value and what is allowed.

// FieldError is one problem with one annotation.
type FieldError struct {
	// Key is the full annotation key.
	Key string
	// Path locates the problem inside a structured value (metrics,
	// behavior), such as "[1].targetValue"; empty for a plain value.
	Path string
	// Value is the offending value (the element at Path, if any).
	Value string
	// Message says what is wrong and what is allowed.
	Message string

	// absent marks a required key that is missing, so that the message does
	// not quote an empty value the user never wrote.
	absent bool
}

// Error renders `key: "value": message`, or `key: path: "value": message`
// for a field inside a structured value.
func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Key)
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if !e.absent && (e.Path == "" || e.Value != "") {
		b.WriteString(quote(e.Value))
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// quote quotes a value, shortened so that one huge value cannot flood an
// Event or a log line.
func quote(v string) string {
	if len(v) <= maxErrorValueLen {
		return strconv.Quote(v)
	}
	cut := maxErrorValueLen
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.Quote(v[:cut]+"…") + fmt.Sprintf(" (%d bytes)", len(v))
}

// Error is every problem found in an app's annotations.
type Error struct {
	Fields []FieldError
}

// Error joins every field error with "; ".
func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap exposes each field error to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

// cleanDecodeError strips the decoder's wrapping so that the message says
// what is wrong with the user's YAML, not how it was decoded.
func cleanDecodeError(err error) string {
	msg := err.Error()
	for _, prefix := range []string{
		"error converting YAML to JSON: ",
		"error unmarshaling JSON: ",
		"while decoding JSON: ",
		"json: ",
		"yaml: ",
	} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}
