package statusclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spinscale/spinscale/internal/status"
)

// Watcher polls a Source and prints the apps whose row changed, like
// `kubectl get -w`: the table at the first answer, then a row for each app
// that is new or whose row differs. A row's LAST SCALE counts as changed
// when the scale time changes, not as its age grows.
type Watcher struct {
	Source   Source
	Interval time.Duration
	// Filter narrows each document (namespace, name).
	Filter  func(status.List) status.List
	Options Options
	// JSON prints each changed app as one JSON object per line instead.
	JSON bool
	// Out gets the rows, Err the errors of failed polls.
	Out, Err io.Writer

	widths []int
}

// fetchTimeout bounds one poll, so a hung connection does not stop the
// watch.
const fetchTimeout = 10 * time.Second

// Run polls until ctx ends, then returns nil. A failed poll is printed on
// Err and the next one comes at the interval: errors never make it spin.
func (w *Watcher) Run(ctx context.Context) error {
	ticker := time.NewTicker(w.Interval)
	defer ticker.Stop()
	seen := map[string]string{}
	first := true
	for {
		if ok := w.poll(ctx, seen, first); ok {
			first = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// poll fetches once and prints the changes; it reports whether the fetch
// succeeded.
func (w *Watcher) poll(ctx context.Context, seen map[string]string, first bool) bool {
	fctx, cancel := context.WithTimeout(ctx, max(fetchTimeout, w.Interval))
	defer cancel()
	l, err := w.Source.Fetch(fctx)
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		fmt.Fprintf(w.Err, "%s: %v\n", time.Now().Format(time.TimeOnly), err)
		return false
	}
	if w.Filter != nil {
		l = w.Filter(l)
	}
	var changed []*status.App
	for i := range l.Apps {
		a := &l.Apps[i]
		key := a.Namespace + "/" + a.Name
		sig := fmt.Sprint(w.Options.cells(a, stampOf(a.LastScale)))
		if seen[key] != sig {
			seen[key] = sig
			changed = append(changed, a)
		}
	}
	if w.JSON {
		enc := json.NewEncoder(w.Out)
		for _, a := range changed {
			if err := enc.Encode(a); err != nil {
				fmt.Fprintln(w.Err, err)
			}
		}
		return true
	}
	var rows [][]string
	if first {
		rows = append(rows, w.Options.header())
	}
	for _, a := range changed {
		rows = append(rows, w.Options.row(a, l.At))
	}
	w.widen(rows)
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r[:len(r)-1] {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", w.widths[i]-utf8.RuneCountInString(c)+columnGap))
		}
		b.WriteString(r[len(r)-1])
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w.Out, b.String()); err != nil {
		fmt.Fprintln(w.Err, err)
	}
	return true
}

// columnGap is the space between columns, as in WriteTable.
const columnGap = 3

// widen grows the column widths to fit rows. The rows printed later keep
// the widths of those printed before, so they line up under the header
// (kubectl realigns every row on its own).
func (w *Watcher) widen(rows [][]string) {
	for _, r := range rows {
		for i, c := range r {
			if i == len(w.widths) {
				w.widths = append(w.widths, 0)
			}
			w.widths[i] = max(w.widths[i], utf8.RuneCountInString(c))
		}
	}
}

func stampOf(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
