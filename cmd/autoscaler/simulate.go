package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/spinscale/spinscale/internal/simulate"
)

const simulateUsage = `Usage: autoscaler simulate --scenario FILE [--output table|json|csv] [--plot FILE.png]

Runs the decision engine offline over a scenario file (YAML or JSON) and
prints one decision per step. No cluster is needed; nothing is ever scaled.
A load-trace scenario (workload, sim, trace) simulates the app's pods under
that load, prints one decision per tick and a summary against the oracle,
and can write its timeline as CSV and a plot as PNG.
See docs/simulate.md for the scenario format.

Flags:
`

// runSimulate implements `autoscaler simulate`. Exit codes: 0 success (even
// when a metric failed at some step), 2 bad flags or a malformed scenario or
// invalid annotations, 1 when the output cannot be written.
func runSimulate(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("simulate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarioFile := fs.String("scenario", "", "scenario file, YAML or JSON; - reads standard input (required)")
	output := fs.StringP("output", "o", string(simulate.FormatTable), "output format: table, json (one JSON object per step and line) or csv (a load trace's timeline, one row per second)")
	plotFile := fs.String("plot", "", "load-trace scenarios: also draw load, capacity and pods over time into this PNG file")
	if code, ok := parseCommandFlags(fs, simulateUsage, args, stdout, stderr); !ok {
		return code
	}
	if *scenarioFile == "" {
		fmt.Fprintln(stderr, "simulate: --scenario is required")
		printUsage(fs, simulateUsage, stderr, stderr)
		return exitUsage
	}
	format, err := simulate.ParseFormat(*output)
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return exitUsage
	}

	var data []byte
	if *scenarioFile == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*scenarioFile)
	}
	if err != nil {
		fmt.Fprintf(stderr, "simulate: read scenario: %v\n", err)
		return exitUsage
	}
	// A trace file is named relative to the scenario (standard input: the
	// working directory).
	dir := "."
	if *scenarioFile != "-" {
		dir = filepath.Dir(*scenarioFile)
	}
	sc, err := simulate.LoadWith(data, simulate.Options{ReadFile: func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	}})
	if err != nil {
		fmt.Fprintf(stderr, "simulate: %s: %v\n", *scenarioFile, err)
		return exitUsage
	}
	for _, w := range sc.Warnings {
		fmt.Fprintf(stderr, "simulate: warning: %s\n", w)
	}
	if sc.Trace == nil {
		if format == simulate.FormatCSV || *plotFile != "" {
			fmt.Fprintf(stderr, "simulate: %s: --output csv and --plot need a load-trace scenario (workload, sim, trace); this one lists steps\n", *scenarioFile)
			return exitUsage
		}
		if err := simulate.Write(stdout, format, sc.Run()); err != nil {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	return runTrace(sc.Trace, format, *plotFile, *scenarioFile, stdout, stderr)
}

// runTrace simulates a load-trace scenario and writes its outputs.
func runTrace(ts *simulate.TraceScenario, format simulate.Format, plotFile, name string, stdout, stderr io.Writer) int {
	res := ts.Simulate()
	if plotFile != "" {
		title := "spinscale simulate: " + filepath.Base(name)
		if name == "-" {
			title = "spinscale simulate"
		}
		if err := writePlot(plotFile, res, ts.Workload.CapacityPerPod, title); err != nil {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return exitFailure
		}
	}
	var err error
	switch format {
	case simulate.FormatJSON:
		err = simulate.WriteTraceJSON(stdout, res)
	case simulate.FormatCSV:
		err = simulate.WriteTraceCSV(stdout, res, ts.Workload.CapacityPerPod, ts.Workload.TargetLoadPerPod)
	default:
		err = simulate.WriteTraceTable(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "simulate: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func writePlot(path string, res *simulate.TraceResult, capacityPerPod float64, title string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := simulate.WritePlot(f, res, capacityPerPod, title); err != nil {
		f.Close()
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return nil
}
