package activator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The fast loop's HTTP/1.1 parsing (fast.go). It is strict on purpose: it
// takes the plain forms keep-alive clients and servers send, and says "not
// mine" to anything else, which then goes to Go's HTTP server and
// http.Transport (the request is not consumed, nor sent anywhere, before
// that is decided). So it never has to answer malformed input itself.

// headEnd returns the length of the head at the start of buf, through its
// empty line, or 0 when the head is not complete yet. bad is a form the
// fast loop does not take: a line ending in a bare LF, or an empty line
// before the head.
func headEnd(buf []byte) (end int, bad bool) {
	start := 0
	for {
		i := bytes.IndexByte(buf[start:], '\n')
		if i < 0 {
			return 0, false
		}
		i += start
		if i == 0 || buf[i-1] != '\r' {
			return 0, true
		}
		if i-1 == start { // an empty line
			if start == 0 {
				return 0, true
			}
			return i + 1, false
		}
		start = i + 1
	}
}

// maxFastHeaders bounds the header lines a head may have in the fast loop.
const maxFastHeaders = 64

// span is a line of a head: [from, to) without its CRLF.
type span struct{ from, to int }

// reqHead is a request head the fast loop takes: GET or HEAD, origin-form
// target, HTTP/1.1, one Host, no body, nothing hop-by-hop but Connection's
// keep-alive or close. Its slices point into the connection's read buffer.
type reqHead struct {
	head   []byte
	method string // "GET" or "HEAD"
	target []byte
	path   string // target's path, for routing
	host   []byte
	close  bool // Connection: close
	// The X-Forwarded headers the client sent: xff's lines, xfh's and
	// xfp's first.
	xff      [4][]byte
	nxff     int
	xfh, xfp []byte
	hasXFH   bool
	hasXFP   bool
	// kept are the lines passed on as they came.
	kept  [maxFastHeaders]span
	nkept int
}

// parseRequest fills h from head (through its empty line) and reports
// whether the fast loop takes it.
func (h *reqHead) parse(head []byte) bool {
	*h = reqHead{head: head}
	line, rest, ok := cutLine(head, 0)
	if !ok {
		return false
	}
	rl := head[line.from:line.to]
	sp1 := bytes.IndexByte(rl, ' ')
	if sp1 < 0 {
		return false
	}
	switch string(rl[:sp1]) {
	case "GET":
		h.method = "GET"
	case "HEAD":
		h.method = "HEAD"
	default:
		return false
	}
	sp2 := bytes.IndexByte(rl[sp1+1:], ' ')
	if sp2 < 0 {
		return false
	}
	h.target = rl[sp1+1 : sp1+1+sp2]
	if string(rl[sp1+1+sp2+1:]) != "HTTP/1.1" {
		return false
	}
	q, ok := plainTarget(h.target)
	if !ok {
		return false
	}
	h.path = string(h.target[:q])
	for {
		line, rest, ok = cutLine(head, rest)
		if !ok {
			return false
		}
		if line.from == line.to {
			break // the empty line
		}
		name, value, ok := field(head[line.from:line.to])
		if !ok {
			return false
		}
		switch {
		case foldEq(name, "host"):
			if h.host != nil || !plainHost(value) {
				return false
			}
			h.host = value
		case foldEq(name, "connection"):
			if !connectionTokens(value, &h.close) {
				return false
			}
		case foldEq(name, "content-length"):
			if string(value) != "0" {
				return false
			}
		case foldEq(name, "x-forwarded-for"):
			if h.nxff == len(h.xff) {
				return false
			}
			h.xff[h.nxff] = value
			h.nxff++
		case foldEq(name, "x-forwarded-host"):
			if !h.hasXFH {
				h.xfh, h.hasXFH = value, true
			}
		case foldEq(name, "x-forwarded-proto"):
			if !h.hasXFP {
				h.xfp, h.hasXFP = value, true
			}
		case foldEq(name, "forwarded"):
			// dropped, as a reverse proxy that sets X-Forwarded does
		case hopByHop(name):
			return false
		default:
			if h.nkept == len(h.kept) {
				return false
			}
			h.kept[h.nkept] = line
			h.nkept++
		}
	}
	return h.host != nil
}

// cutLine returns the line of head starting at from (without its CRLF)
// and where the next starts.
func cutLine(head []byte, from int) (line span, next int, ok bool) {
	i := bytes.Index(head[from:], crlf)
	if i < 0 {
		return span{}, 0, false
	}
	return span{from, from + i}, from + i + 2, true
}

var crlf = []byte("\r\n")

// field splits a header line into its name and its value without the
// whitespace around it; ok is false for a name that is not a token or a
// value with control characters.
func field(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isToken(c) {
			return nil, nil, false
		}
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// isToken reports whether c may be in a header name (RFC 9110's tchar).
func isToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// foldEq reports whether b is s (lower case) without regard to case.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hopByHop reports the hop-by-hop and framing headers the fast loop leaves
// to Go's HTTP stack (Connection and Content-Length are handled apart).
func hopByHop(name []byte) bool {
	for _, s := range [...]string{"transfer-encoding", "upgrade", "expect", "te", "trailer", "keep-alive",
		"proxy-connection", "proxy-authorization", "proxy-authenticate", "http2-settings"} {
		if foldEq(name, s) {
			return true
		}
	}
	return false
}

// connectionTokens reads a Connection value: keep-alive and close only
// (close sets *closing); any other token names a hop-by-hop header, which
// the fast loop leaves to Go's HTTP stack.
func connectionTokens(v []byte, closing *bool) bool {
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		tok = bytes.Trim(tok, " \t")
		switch {
		case len(tok) == 0, foldEq(tok, "keep-alive"):
		case foldEq(tok, "close"):
			*closing = true
		default:
			return false
		}
	}
	return true
}

// plainTarget reports whether t is an origin-form target whose path and
// query pass through a reverse proxy unchanged: a path of unreserved
// characters, sub-delimiters, ':', '@' and '/' (no percent-encoding, so
// that the path routed on is the one sent), and a query of the same
// without ';', with '?' and valid percent-escapes. q is where the path
// ends.
func plainTarget(t []byte) (q int, ok bool) {
	if len(t) == 0 || t[0] != '/' {
		return 0, false
	}
	q = len(t)
	for i := 0; i < len(t); i++ {
		c := t[i]
		inQuery := i >= q
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("-._~!$&'()*+,=:@/"), c) >= 0:
		case c == ';' && !inQuery:
		case c == '?':
			if !inQuery {
				q = i
			}
		case c == '%' && inQuery:
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return 0, false
			}
			i += 2
		default:
			return 0, false
		}
	}
	return q, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// plainHost reports whether a Host value is a plain name or address, with
// an optional port.
func plainHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// respHead is a response head the fast loop passes on: HTTP/1.1, a final
// status, and a body framed by Content-Length or chunked (or none).
type respHead struct {
	status  int
	length  int64 // the body's length; -1 chunked
	close   bool  // the pod closes the connection after it
	hasDate bool
	// kept are the lines passed on as they came, the status line first.
	kept  [maxFastHeaders + 1]span
	nkept int
}

// errNotFast is a head the fast loop does not take.
var errNotFast = errors.New("not for the fast loop")

// parse fills r from head (through its empty line), for a request made
// with method. A response whose framing the fast loop does not pass on
// (informational, close-delimited, both lengths, other codings) or which
// is not plain is errNotFast.
func (r *respHead) parse(head []byte, method string) error {
	*r = respHead{length: -2}
	line, rest, ok := cutLine(head, 0)
	if !ok {
		return errNotFast
	}
	sl := head[line.from:line.to]
	if len(sl) < 12 || string(sl[:9]) != "HTTP/1.1 " || (len(sl) > 12 && sl[12] != ' ') {
		return errNotFast
	}
	code, err := strconv.Atoi(string(sl[9:12]))
	if err != nil || code < 200 || code > 999 {
		return errNotFast // informational answers go to http.Transport
	}
	r.status = code
	r.kept[0] = line
	r.nkept = 1
	chunked := false
	for {
		line, rest, ok = cutLine(head, rest)
		if !ok {
			return errNotFast
		}
		if line.from == line.to {
			break
		}
		name, value, ok := field(head[line.from:line.to])
		if !ok {
			return errNotFast
		}
		keep := true
		switch {
		case foldEq(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || r.length != -2 {
				return errNotFast
			}
			r.length = n
		case foldEq(name, "transfer-encoding"):
			if !foldEq(value, "chunked") || chunked {
				return errNotFast
			}
			chunked = true
		case foldEq(name, "connection"):
			if !connectionTokens(value, &r.close) {
				return errNotFast
			}
			keep = false
		case foldEq(name, "keep-alive"), foldEq(name, "proxy-connection"), foldEq(name, "te"),
			foldEq(name, "upgrade"), foldEq(name, "proxy-authenticate"):
			keep = false
		case foldEq(name, "date"):
			r.hasDate = true
		}
		if keep {
			if r.nkept == len(r.kept) {
				return errNotFast
			}
			r.kept[r.nkept] = line
			r.nkept++
		}
	}
	switch {
	case chunked && r.length != -2:
		return errNotFast // both: ambiguous
	case chunked:
		r.length = -1
	case r.length == -2 && !r.bodyless(method):
		return errNotFast // ends at the connection's close
	case r.length == -2:
		r.length = 0
	}
	return nil
}

// bodyless reports whether the response has no body whatever its head
// says.
func (r *respHead) bodyless(method string) bool {
	return method == "HEAD" || r.status == 204 || r.status == 304
}

// copyBody passes a body of n bytes from src to dst, flushing dst before
// each wait for src, so that a body streamed by the pod reaches the client
// as it comes.
func copyBody(dst *bufio.Writer, src *bufio.Reader, n int64) error {
	for n > 0 {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return errClientWrite{err}
			}
			if _, err := src.Peek(1); err != nil {
				return fmt.Errorf("read body: %w", err)
			}
		}
		b, _ := src.Peek(int(min(int64(src.Buffered()), n)))
		if _, err := dst.Write(b); err != nil {
			return errClientWrite{err}
		}
		_, _ = src.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// maxChunkLine bounds a chunk-size line and a trailer line.
const maxChunkLine = 4096

// copyChunked passes a chunked body from src to dst as it is framed,
// trailers included, flushing dst before each wait for src.
func copyChunked(dst *bufio.Writer, src *bufio.Reader) error {
	for {
		line, err := copyLine(dst, src)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimRight(line, " \t")), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("read body: bad chunk size %q", line)
		}
		if size == 0 {
			for { // trailers, to the empty line
				l, err := copyLine(dst, src)
				if err != nil {
					return err
				}
				if len(l) == 0 {
					return nil
				}
			}
		}
		if err := copyBody(dst, src, size); err != nil {
			return err
		}
		end, err := copyLine(dst, src)
		if err != nil {
			return err
		}
		if len(end) != 0 {
			return errors.New("read body: chunk not followed by CRLF")
		}
	}
}

// copyLine passes one CRLF-ended line from src to dst and returns it
// without its CRLF (valid until src is read again).
func copyLine(dst *bufio.Writer, src *bufio.Reader) ([]byte, error) {
	for {
		buf, _ := src.Peek(src.Buffered())
		if i := bytes.Index(buf, crlf); i >= 0 {
			if _, err := dst.Write(buf[:i+2]); err != nil {
				return nil, errClientWrite{err}
			}
			line := buf[:i]
			_, _ = src.Discard(i + 2)
			return line, nil
		}
		if len(buf) >= maxChunkLine {
			return nil, errors.New("read body: chunk line too long")
		}
		if err := dst.Flush(); err != nil {
			return nil, errClientWrite{err}
		}
		if _, err := src.Peek(len(buf) + 1); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
	}
}

// errClientWrite is a write to the client that failed.
type errClientWrite struct{ err error }

func (e errClientWrite) Error() string { return "write to client: " + e.err.Error() }
func (e errClientWrite) Unwrap() error { return e.err }
