package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/spinscale/spinscale/internal/recommender"
)

// Failure kinds of a query: the `kind` label of
// spinscale_prometheus_query_failures_total and QueryError.Kind.
const (
	// KindTimeout: no answer within prometheus.timeout (or the tick ended).
	KindTimeout = "timeout"
	// KindUnavailable: Prometheus could not be reached or answered 5xx.
	KindUnavailable = "unavailable"
	// KindRejected: Prometheus (or a proxy) refused the request: 401, 403, 404...
	KindRejected = "rejected"
	// KindBadResponse: the answer is not a Prometheus API response.
	KindBadResponse = "bad_response"
	// KindInvalid: the PromQL does not parse (Prometheus' bad_data).
	KindInvalid = "invalid"
	// KindExecution: the query parsed but failed to evaluate.
	KindExecution = "execution"
	// KindEmpty: the result has no sample.
	KindEmpty = "empty"
	// KindNaN: the result is NaN or infinite, which is not data.
	KindNaN = "nan"
	// KindShape: a result Spinscale cannot map onto the app: several series
	// without a pod label, a range vector, a string.
	KindShape = "shape"
)

var failureKinds = []string{KindTimeout, KindUnavailable, KindRejected, KindBadResponse, KindInvalid, KindExecution, KindEmpty, KindNaN, KindShape}

// kindPhrase is the stable first clause of a QueryError's message, so that
// a Warning keyed on it is not re-emitted on every tick.
var kindPhrase = map[string]string{
	KindTimeout:     "prometheus query timed out",
	KindUnavailable: "prometheus unavailable",
	KindRejected:    "prometheus rejected the request",
	KindBadResponse: "unexpected response from prometheus",
	KindInvalid:     "invalid PromQL",
	KindExecution:   "prometheus failed to evaluate the query",
	KindEmpty:       recommender.ErrNoData.Error(),
	KindNaN:         "not a number",
	KindShape:       "unusable result",
}

// QueryError is a failed query. Its message names the kind, the query and
// the details; Summary is the part that stays the same from tick to tick.
// Empty and NaN results unwrap to recommender.ErrNoData; a failed request
// unwraps to the client's error.
type QueryError struct {
	Kind  string
	Query string
	// Reason is stable for a given query and failure (it is in Summary);
	// Detail may change between ticks (counts, addresses). Either may be
	// empty.
	Reason, Detail string
	err            error
}

func (e *QueryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: query %q", kindPhrase[e.Kind], e.Query)
	switch {
	case e.Detail != "":
		b.WriteString(": " + e.Detail)
	case e.Reason != "":
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

// Summary is the failure without the query and without anything that may
// change from one tick to the next.
func (e *QueryError) Summary() string {
	if e.Reason == "" {
		return kindPhrase[e.Kind]
	}
	return kindPhrase[e.Kind] + ": " + e.Reason
}

func (e *QueryError) Unwrap() error { return e.err }

// classify turns the error the client returned for query q into a
// QueryError of the right kind. The source's own deadline is the caller's
// to recognise: only it knows the limit it set.
func classify(q string, err error) *QueryError {
	qe := &QueryError{Query: q, Detail: err.Error(), err: err}
	var apiErr *promv1.Error
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		qe.Kind = KindTimeout
	case errors.As(err, &apiErr):
		apiErr = fromBody(apiErr)
		qe.Detail = apiErr.Msg
		switch apiErr.Type {
		case promv1.ErrBadData:
			// The query is the only parameter a user controls: a parse
			// error, stable for a given query, and the one thing to fix.
			qe.Kind, qe.Reason, qe.Detail = KindInvalid, apiErr.Msg, ""
		case promv1.ErrExec:
			qe.Kind = KindExecution
		case promv1.ErrTimeout, promv1.ErrCanceled:
			qe.Kind = KindTimeout
		case promv1.ErrClient:
			qe.Kind, qe.Reason = KindRejected, apiErr.Msg
			qe.Detail = apiErr.Msg + detailOf(apiErr.Detail)
		case promv1.ErrServer:
			// No Reason: the status of a restarting server or its proxy
			// varies, the remedy does not.
			qe.Kind, qe.Detail = KindUnavailable, apiErr.Msg+detailOf(apiErr.Detail)
		case promv1.ErrBadResponse:
			qe.Kind = KindBadResponse
			if strings.Contains(apiErr.Msg, "unexpected value type") {
				// The client decodes scalars, vectors and matrices only:
				// this is a string result. Its message is the only mark.
				qe.Kind, qe.Reason = KindShape, "a string result: the query must return a number"
				qe.Detail = ""
			} else {
				qe.Reason = "is prometheus.address the Prometheus API?"
			}
		case "unavailable", "internal":
			qe.Kind, qe.Detail = KindUnavailable, string(apiErr.Type)+": "+apiErr.Msg
		case "not_found":
			qe.Kind, qe.Reason = KindRejected, string(apiErr.Type)
			qe.Detail = string(apiErr.Type) + ": " + apiErr.Msg
		default:
			qe.Kind = KindExecution
			qe.Detail = string(apiErr.Type) + ": " + apiErr.Msg
		}
	case errors.As(err, &netErr) && netErr.Timeout():
		qe.Kind = KindTimeout
	default:
		qe.Kind = KindUnavailable
	}
	return qe
}

// fromBody returns the error a Prometheus API body carries when the client
// could not see it: the client reads the body of 400 and 422 answers only,
// but Prometheus also answers 503 (timeout, unavailable), 499 (canceled)
// and 500 (internal) with a JSON error.
func fromBody(e *promv1.Error) *promv1.Error {
	if e.Type != promv1.ErrServer && e.Type != promv1.ErrClient {
		return e
	}
	var body struct {
		Status    string           `json:"status"`
		ErrorType promv1.ErrorType `json:"errorType"`
		Error     string           `json:"error"`
	}
	if json.Unmarshal([]byte(e.Detail), &body) != nil || body.Status != "error" || body.ErrorType == "" {
		return e
	}
	return &promv1.Error{Type: body.ErrorType, Msg: body.Error}
}

// detailOf shortens an error body for a message.
func detailOf(body string) string {
	body = strings.TrimSpace(body)
	if body == "" {
		return ""
	}
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	return ": " + body
}
