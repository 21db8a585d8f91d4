package simulate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

	"github.com/spinscale/spinscale/internal/report"
)

// TickOutput is one line of `simulate --output json` for a load-trace
// scenario: the decision as for a pod-level step, and what the app looked
// like at the tick (before the decision).
type TickOutput struct {
	At float64 `json:"at"`
	report.Decision
	// Load is the trace's load at the tick.
	Load float64 `json:"load"`
	// Pods counts every pod of the app, Ready the Ready ones.
	Pods  int32 `json:"pods"`
	Ready int32 `json:"ready"`
	// Oracle is the oracle's pod count at the tick.
	Oracle int32 `json:"oracle"`
}

// SummaryOutput is the last line of `simulate --output json` for a
// load-trace scenario.
type SummaryOutput struct {
	Summary Summary `json:"summary"`
}

// WriteTraceJSON prints one compact JSON object per tick, then the summary
// line.
func WriteTraceJSON(w io.Writer, r *TraceResult) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range r.Ticks {
		tk := &r.Ticks[i]
		if err := enc.Encode(TickOutput{At: tk.At, Decision: report.NewDecision(&tk.Decision),
			Load: round6(tk.Load), Pods: tk.Pods, Ready: tk.Ready, Oracle: tk.Oracle}); err != nil {
			return fmt.Errorf("write tick at %s: %w", fmtNum(tk.At), err)
		}
	}
	if err := enc.Encode(SummaryOutput{Summary: r.Summary}); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return bw.Flush()
}

// WriteTraceTable prints one line per tick, in the style of the pod-level
// table with the load and the pods added, then the summary against the
// oracle.
func WriteTraceTable(w io.Writer, r *TraceResult) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "AT\tLOAD\tPODS\tREADY\tORACLE\tTARGETS\tDESIRED\tACTION\tLIMITED-BY\tREASON")
	for i := range r.Ticks {
		tk := &r.Ticks[i]
		d := &tk.Decision
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n",
			fmtNum(tk.At), fmtLoad(tk.Load), tk.Pods, tk.Ready, tk.Oracle, report.Targets(d), d.DesiredReplicas, d.Action, d.LimitedBy, d.Reason())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return WriteSummary(w, r)
}

// WriteSummary prints the summary, each figure next to the oracle's.
func WriteSummary(w io.Writer, r *TraceResult) error {
	s, o := &r.Summary, &r.Oracle
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	pct := func(v float64) string {
		return strconv.FormatFloat(100*v/s.OraclePodSeconds, 'f', 1, 64) + "% of the oracle's pod-seconds"
	}
	fmt.Fprintln(tw, "SUMMARY\tTHIS RUN\tORACLE\tRATIO")
	fmt.Fprintf(tw, "pod-seconds\t%s\t%s\tcost ratio %s\n", fmtFig(s.PodSeconds), fmtFig(s.OraclePodSeconds), strconv.FormatFloat(s.CostRatio, 'f', 3, 64))
	fmt.Fprintf(tw, "under-provisioned pod-seconds\t%s\t0\t%s\n", fmtFig(s.UnderProvisionedPodSeconds), pct(s.UnderProvisionedPodSeconds))
	fmt.Fprintf(tw, "under-provisioned seconds\t%s\t0\t%s%% of the time\n", fmtFig(s.UnderProvisionedSeconds),
		strconv.FormatFloat(100*s.UnderProvisionedSeconds/float64(max(len(r.Timeline), 1)), 'f', 1, 64))
	fmt.Fprintf(tw, "over-provisioned pod-seconds\t%s\t0\t%s\n", fmtFig(s.OverProvisionedPodSeconds), pct(s.OverProvisionedPodSeconds))
	fmt.Fprintf(tw, "scale actions\t%d\t%d\t%s\n", s.ScaleActions, o.ScaleActions, ratio(float64(s.ScaleActions), float64(o.ScaleActions)))
	fmt.Fprintf(tw, "reversals\t%d\t%d\t%s\n", s.Reversals, o.Reversals, ratio(float64(s.Reversals), float64(o.Reversals)))
	fmt.Fprintf(tw, "first scale-up (s)\t%s\t%s\n", fmtOpt(s.FirstScaleUpSeconds), fmtOpt(o.FirstScaleUpSeconds))
	return tw.Flush()
}

// WriteTraceCSV prints the timeline, one row per simulated second. The
// columns are documented in docs/simulate.md; recommendation, desired and
// metric are those of the latest tick.
func WriteTraceCSV(w io.Writer, r *TraceResult, capacityPerPod, targetLoadPerPod float64) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "t,load,demandPods,served,unserved,capacity,replicas,running,ready,oracle,recommendation,desired,metric")
	tick := -1
	// The latest tick's columns, rendered once per tick, not per second.
	rec, desired, metric := "", "", ""
	for i := range r.Timeline {
		s := &r.Timeline[i]
		for tick+1 < len(r.Ticks) && r.Ticks[tick+1].At <= float64(s.T) {
			tick++
			d := &r.Ticks[tick].Decision
			rec = strconv.Itoa(int(d.Recommendation))
			desired = strconv.Itoa(int(d.DesiredReplicas))
			metric = ""
			if len(d.Metrics) > 0 {
				if m := report.NewDecision(d).Metrics[0]; m.Current != nil {
					metric = fmtCSV(*m.Current)
				}
			}
		}
		fmt.Fprintf(bw, "%d,%s,%s,%s,%s,%s,%d,%d,%d,%d,%s,%s,%s\n", s.T,
			fmtCSV(s.Load), fmtCSV(s.Load/targetLoadPerPod), fmtCSV(s.Served), fmtCSV(s.Load-s.Served),
			fmtCSV(float64(s.Ready)*capacityPerPod), s.Replicas, s.Running, s.Ready, s.Oracle, rec, desired, metric)
	}
	return bw.Flush()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

func fmtOpt(f *float64) string {
	if f == nil {
		return "never"
	}
	return fmtNum(*f)
}

// fmtFig renders a summary figure with at most three decimals.
func fmtFig(f float64) string { return strconv.FormatFloat(math.Round(f*1e3)/1e3, 'f', -1, 64) }

// fmtLoad renders a load with at most two decimals.
func fmtLoad(f float64) string { return strconv.FormatFloat(math.Round(f*1e2)/1e2, 'f', -1, 64) }

// fmtCSV renders a number with at most four decimals.
func fmtCSV(f float64) string { return strconv.FormatFloat(math.Round(f*1e4)/1e4, 'f', -1, 64) }
