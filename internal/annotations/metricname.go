package annotations

import (
	"slices"
	"strings"
)

// DefaultMetricAlias is what scenarios and older configurations call the
// prometheus-query metric; `autoscaler simulate` still accepts it as the
// key of that metric's results.
const DefaultMetricAlias = "default"

// queryMetricName names the prometheus-query metric in decisions, Events,
// logs and the dry-run table: the first metric the query selects by name
// (traefik_service_requests_total for sum(rate(traefik_service_requests_total{...}[1m]))),
// which is what the user recognises. When the query selects no metric by
// name (vector(1), {__name__=~"..."}) or that name is already another
// metric's, the annotation's key names it instead: it can be no metric's
// name and no list entry's.
func queryMetricName(query string, taken []string) string {
	name := firstMetricName(query)
	if name == "" || slices.Contains(taken, name) {
		return KeyPrometheusQuery
	}
	return name
}

// promqlWords are the PromQL keywords and number literals that read like
// identifiers but select nothing.
var promqlWords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
	"and", "or", "unless", "atan2", "inf", "nan", "smoothed", "anchored"}

// groupingWords are the keywords followed by a parenthesised label list.
var groupingWords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// firstMetricName returns the name of the first vector selector of a PromQL
// expression, or "" when it has none. It is a lexer, not a parser: it skips
// strings, label matchers ({...}), ranges ([...]), numbers and durations,
// function and aggregation names (an identifier followed by "(", or by a by
// or without clause), keywords
// and the label lists after by, without, on, ignoring, group_left and
// group_right. A query Prometheus would refuse may still give a name;
// Prometheus reports its error.
func firstMetricName(q string) string {
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(q, i)
		case c == '{':
			i = skipPast(q, i, '}')
		case c == '[':
			i = skipPast(q, i, ']')
		case c == '#': // a comment runs to the end of the line
			i = skipPast(q, i, '\n')
		case isDigit(c) || c == '.':
			// Numbers (1e3, 0x1f) and durations (5m, 1h30m) are one token.
			for i < len(q) && (isIdentChar(q[i]) || q[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(q) && isIdentChar(q[i]) {
				i++
			}
			word := q[start:i]
			next := nextNonSpace(q, i)
			lower := strings.ToLower(word)
			switch {
			case slices.Contains(groupingWords, lower) && next < len(q) && q[next] == '(':
				i = skipPast(q, next, ')')
			case next < len(q) && q[next] == '(',
				aggregationClause(q, next):
				// A function or an aggregation.
			case slices.Contains(promqlWords, lower):
			default:
				return word
			}
		default:
			i++
		}
	}
	return ""
}

// skipString returns the index just past the string literal starting at i,
// honouring backslash escapes except in raw (backquoted) strings.
func skipString(q string, i int) int {
	quote := q[i]
	for i++; i < len(q); i++ {
		switch {
		case q[i] == '\\' && quote != '`':
			i++
		case q[i] == quote:
			return i + 1
		}
	}
	return len(q)
}

// skipPast returns the index just past the first end at or after i,
// skipping string literals on the way (a matcher's value may hold a "}").
func skipPast(q string, i int, end byte) int {
	for i++; i < len(q); {
		switch q[i] {
		case end:
			return i + 1
		case '"', '\'', '`':
			i = skipString(q, i)
		default:
			i++
		}
	}
	return len(q)
}

// aggregationClause reports whether a by or without clause starts at i, as
// after the aggregation in sum by (pod) (...).
func aggregationClause(q string, i int) bool {
	j := i
	for j < len(q) && isIdentChar(q[j]) {
		j++
	}
	switch strings.ToLower(q[i:j]) {
	case "by", "without":
		k := nextNonSpace(q, j)
		return k < len(q) && q[k] == '('
	}
	return false
}

func nextNonSpace(q string, i int) int {
	for i < len(q) && strings.ContainsRune(" \t\r\n", rune(q[i])) {
		i++
	}
	return i
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }
