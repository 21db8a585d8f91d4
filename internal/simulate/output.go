package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spinscale/spinscale/internal/report"
)

// StepOutput is one line of `simulate --output json`.
type StepOutput struct {
	At float64 `json:"at"`
	report.Decision
}

// WriteJSON prints one compact JSON object per result, one per line.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range results {
		r := &results[i]
		if err := enc.Encode(StepOutput{At: r.At, Decision: report.NewDecision(&r.Decision)}); err != nil {
			return fmt.Errorf("write step at %s: %w", fmtNum(r.At), err)
		}
	}
	return nil
}

// WriteTable prints the results as a table in the style of
// `kubectl get hpa`: AT REPLICAS TARGETS DESIRED ACTION LIMITED-BY REASON.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "AT\tREPLICAS\tTARGETS\tDESIRED\tACTION\tLIMITED-BY\tREASON")
	for i := range results {
		d := &results[i].Decision
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n",
			fmtNum(results[i].At), d.CurrentReplicas, report.Targets(d), d.DesiredReplicas, d.Action, d.LimitedBy, d.Reason())
	}
	return tw.Flush()
}

// Format is an output format of simulate.
type Format string

const (
	// FormatTable is one line per step, in the style of kubectl get hpa.
	FormatTable Format = "table"
	// FormatJSON is one compact JSON object (StepOutput) per step and line.
	FormatJSON Format = "json"
	// FormatCSV is a load-trace simulation's timeline, one row per second.
	FormatCSV Format = "csv"
)

// ParseFormat checks an --output value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatJSON, FormatCSV:
		return f, nil
	}
	return "", fmt.Errorf("--output: %s is not an output format: allowed table, json, csv (load-trace scenarios only)", strconv.Quote(s))
}

// Write renders results in the given format.
func Write(w io.Writer, f Format, results []Result) error {
	if f == FormatCSV {
		return fmt.Errorf("--output csv: only a load-trace scenario has a timeline to write")
	}
	if f == FormatJSON {
		return WriteJSON(w, results)
	}
	return WriteTable(w, results)
}
