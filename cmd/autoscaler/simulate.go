package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/spinscale/spinscale/internal/simulate"
)

const simulateUsage = `Usage: autoscaler simulate --scenario FILE [--output table|json]

Runs the decision engine offline over a scenario file (YAML or JSON) and
prints one decision per step. No cluster is needed; nothing is ever scaled.
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
	output := fs.StringP("output", "o", string(simulate.FormatTable), "output format: table or json (one JSON object per step and line)")
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, simulateUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	fs.Usage = func() {} // printed below, on stdout for --help
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		fmt.Fprintln(stderr, "simulate:", err)
		printUsage(stderr)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "simulate: unexpected arguments %q\n", fs.Args())
		printUsage(stderr)
		return exitUsage
	}
	if *scenarioFile == "" {
		fmt.Fprintln(stderr, "simulate: --scenario is required")
		printUsage(stderr)
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
	sc, err := simulate.Load(data)
	if err != nil {
		fmt.Fprintf(stderr, "simulate: %s: %v\n", *scenarioFile, err)
		return exitUsage
	}
	for _, w := range sc.Warnings {
		fmt.Fprintf(stderr, "simulate: warning: %s\n", w)
	}
	if err := simulate.Write(stdout, format, sc.Run()); err != nil {
		fmt.Fprintf(stderr, "simulate: %v\n", err)
		return exitFailure
	}
	return exitOK
}
