package actuator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/types"

	"github.com/spinscale/spinscale/internal/recommender"
	"github.com/spinscale/spinscale/internal/report"
)

// Printer is the Actuator of dry-run: it shows decisions instead of carrying
// them out. Decisions of one tick are collected and written, sorted by app,
// on Flush.
type Printer struct {
	Out  io.Writer
	JSON bool

	mu   sync.Mutex
	rows []row
}

type row struct {
	app      types.NamespacedName
	min, max int32
	d        recommender.Decision
	// held explains an app that was not decided at all (invalid
	// annotations, another autoscaler owns it); d then holds only the count.
	held string
}

// Apply collects one app's decision for the current tick; it never scales.
func (p *Printer) Apply(_ context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (bool, error) {
	p.mu.Lock()
	p.rows = append(p.rows, row{app: app, min: spec.MinReplicas, max: spec.MaxReplicas, d: *d})
	p.mu.Unlock()
	return false, nil
}

// Hold collects an app that is left as it is without a decision, with the
// reason, so that the dry-run output lists every opted-in app.
func (p *Printer) Hold(app types.NamespacedName, replicas int32, reason string) {
	p.mu.Lock()
	p.rows = append(p.rows, row{app: app, held: reason, d: recommender.Decision{
		CurrentReplicas: replicas, DesiredReplicas: replicas, Action: recommender.ActionNone, LimitedBy: recommender.StageNone,
	}})
	p.mu.Unlock()
}

// JSONDecision is one line of `autoscaler run --dry-run --output json`.
// Error is set, and the decision fields only carry the replica count, for an
// app left as it is without a decision.
type JSONDecision struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	report.Decision
	Error string `json:"error,omitempty"`
}

// Flush writes the collected decisions: a table like `kubectl get hpa` with
// DESIRED, ACTION and REASON, or one JSON object per app. The bound columns
// keep kubectl's names, MINPODS and MAXPODS, so that the table reads like
// the one it replaces.
func (p *Printer) Flush() error {
	p.mu.Lock()
	rows := p.rows
	p.rows = nil
	p.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].app.Namespace != rows[j].app.Namespace {
			return rows[i].app.Namespace < rows[j].app.Namespace
		}
		return rows[i].app.Name < rows[j].app.Name
	})
	if p.JSON {
		enc := json.NewEncoder(p.Out)
		enc.SetEscapeHTML(false)
		for i := range rows {
			r := &rows[i]
			out := JSONDecision{Namespace: r.app.Namespace, Name: r.app.Name, Decision: report.NewDecision(&r.d), Error: r.held}
			if r.held != "" {
				out.Reason = "hold: " + r.held
			}
			if err := enc.Encode(out); err != nil {
				return fmt.Errorf("print decision for %s: %w", r.app, err)
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.Out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tTARGETS\tMINPODS\tMAXPODS\tREPLICAS\tDESIRED\tACTION\tREASON")
	for i := range rows {
		r := &rows[i]
		if r.held != "" {
			fmt.Fprintf(tw, "%s\t%s\t<unknown>\t-\t-\t%d\t%d\t%s\t%s\n", r.app.Namespace, r.app.Name,
				r.d.CurrentReplicas, r.d.DesiredReplicas, r.d.Action, "hold: "+strings.ReplaceAll(r.held, "\t", " "))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.app.Namespace, r.app.Name,
			report.Targets(&r.d), r.min, r.max, r.d.CurrentReplicas, r.d.DesiredReplicas, r.d.Action,
			strings.ReplaceAll(r.d.Reason(), "\t", " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print decisions: %w", err)
	}
	return nil
}
