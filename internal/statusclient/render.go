package statusclient

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/spinscale/spinscale/internal/status"
)

// Filter keeps the apps of namespace ("" = every namespace) and, when name
// is set, the app of that name. The List keeps its leader and time.
func Filter(l status.List, namespace, name string) status.List {
	out := l
	out.Apps = []status.App{}
	for _, a := range l.Apps {
		if (namespace == "" || a.Namespace == namespace) && (name == "" || a.Name == name) {
			out.Apps = append(out.Apps, a)
		}
	}
	return out
}

// Options choose the table's columns.
type Options struct {
	// AllNamespaces adds the NAMESPACE column.
	AllNamespaces bool
	// Wide adds LIMITED-BY and REASON.
	Wide bool
}

func (o Options) header() []string {
	h := []string{"NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "DESIRED", "STATE", "LAST SCALE"}
	if o.AllNamespaces {
		h = append([]string{"NAMESPACE"}, h...)
	}
	if o.Wide {
		h = append(h, "LIMITED-BY", "REASON")
	}
	return h
}

// cells is an app's row; lastScale renders the LAST SCALE column.
func (o Options) cells(a *status.App, lastScale string) []string {
	row := []string{a.Name, "Deployment/" + a.Name, a.Targets,
		fmt.Sprint(a.MinReplicas), fmt.Sprint(a.MaxReplicas), fmt.Sprint(a.Replicas), fmt.Sprint(a.Desired),
		a.State, lastScale}
	if o.AllNamespaces {
		row = append([]string{a.Namespace}, row...)
	}
	if o.Wide {
		row = append(row, orNone(a.LimitedBy), oneLine(a.Reason))
	}
	return row
}

// row is an app's row with the age of its last scale at the document's time.
func (o Options) row(a *status.App, at time.Time) []string {
	return o.cells(a, age(a.LastScale, at))
}

// WriteTable prints the apps like `kubectl get hpa`. Ages are measured at
// the document's time, so a clock skew between the controller and the
// reader does not show.
func WriteTable(w io.Writer, l status.List, o Options) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	writeRow(tw, o.header())
	for i := range l.Apps {
		writeRow(tw, o.row(&l.Apps[i], l.At))
	}
	return tw.Flush()
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// WriteJSON prints the List, indented.
func WriteJSON(w io.Writer, l status.List) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l)
}

// age is kubectl's age of t at now ("5m", "3h"); <none> when never.
func age(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return duration.HumanDuration(now.Sub(*t))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// oneLine keeps a table cell on one line and in one column.
func oneLine(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

// WriteDescribe prints one app like `kubectl describe hpa`: its fields, its
// conditions, and its shadow comparison when it has one.
func WriteDescribe(w io.Writer, a *status.App, l status.List) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	field := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	field("Name", a.Name)
	field("Namespace", a.Namespace)
	field("Reference", "Deployment/"+a.Name)
	field("State", a.State)
	field("Profile", orNone(a.Profile))
	if strings.Contains(a.Targets, ": ") {
		field("Metrics", "( current / target )")
		for _, t := range strings.Split(a.Targets, ", ") {
			metric, target, _ := strings.Cut(t, ": ")
			field("  "+metric, target)
		}
	} else {
		field("Metrics", a.Targets) // <none>, <unknown>
	}
	field("Min replicas", fmt.Sprint(a.MinReplicas))
	field("Max replicas", fmt.Sprint(a.MaxReplicas))
	field("Replicas", fmt.Sprintf("%d current / %d desired", a.Replicas, a.Desired))
	field("Limited by", orNone(a.LimitedBy))
	field("Reason", oneLine(a.Reason))
	field("Last decision", stamp(&a.LastDecision, l.At))
	field("Last scale", stamp(a.LastScale, l.At))
	field("Controller", l.Leader)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Conditions:")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tStatus\tReason\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t------\t-------")
	for _, c := range a.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, oneLine(c.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a.Shadow != nil {
		return writeShadowDescribe(w, a.Shadow)
	}
	return nil
}

// stamp is a time and its age: "2026-12-04T06:40:00Z (5m ago)".
func stamp(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), age(t, now))
}

func writeShadowDescribe(w io.Writer, s *status.Shadow) error {
	fmt.Fprintln(w, "Shadow comparison (with the live autoscaler):")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	field := func(k, v string) { fmt.Fprintf(tw, "  %s:\t%s\n", k, v) }
	c := shadowCells(s)
	field("Decisions", c.decisions)
	field("Agree", c.agree)
	field("Higher", c.higher+" replicas")
	field("Lower", c.lower+" replicas")
	field("Sooner", c.sooner)
	field("Later", c.later)
	field("Missed", c.missed)
	field("Replicas now", fmt.Sprintf("%d live / %d Spinscale", s.LiveReplicas, s.ShadowReplicas))
	field("Verdict", Verdict(s))
	return tw.Flush()
}
