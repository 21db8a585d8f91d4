package actuator

import (
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

// Printer shows decisions instead of carrying them out (dry-run). Decisions
// of one tick are collected and written, sorted by app, on Flush.
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
}

// Add collects one app's decision for the current tick.
func (p *Printer) Add(app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) {
	p.mu.Lock()
	p.rows = append(p.rows, row{app: app, min: spec.MinReplicas, max: spec.MaxReplicas, d: *d})
	p.mu.Unlock()
}

// JSONDecision is one line of `autoscaler run --dry-run --output json`.
type JSONDecision struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	report.Decision
}

// Flush writes the collected decisions: a table like `kubectl get hpa` with
// DESIRED, ACTION and REASON, or one JSON object per app.
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
			if err := enc.Encode(JSONDecision{Namespace: r.app.Namespace, Name: r.app.Name, Decision: report.NewDecision(&r.d)}); err != nil {
				return fmt.Errorf("print decision for %s: %w", r.app, err)
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.Out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tTARGETS\tMINPODS\tMAXPODS\tREPLICAS\tDESIRED\tACTION\tREASON")
	for i := range rows {
		r := &rows[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.app.Namespace, r.app.Name,
			report.Targets(&r.d), r.min, r.max, r.d.CurrentReplicas, r.d.DesiredReplicas, r.d.Action,
			strings.ReplaceAll(r.d.Reason(), "\t", " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print decisions: %w", err)
	}
	return nil
}
