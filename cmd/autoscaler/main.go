// Command autoscaler is Spinscale: a Kubernetes autoscaling controller for
// Spin apps run by SpinKube. This package only wires: configuration, logger,
// clients and subcommands. It is the only place that exits.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spinscale/spinscale/internal/version"
)

// Exit codes: 0 success, 1 runtime failure, 2 bad usage, configuration or input.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `Usage: autoscaler <command> [flags]

Commands:
  run            run the controller (or, with --dry-run, print its decisions)
  simulate       run the decision engine offline over a scenario file
  convert        translate HPAs, KEDA ScaledObjects or scaffold flags into annotations
  status         show the apps as the controller last decided them (like kubectl get hpa)
  shadow-report  compare the decisions of apps in shadow mode with their live autoscaler
  version        print the version

Run 'autoscaler <command> --help' for a command's flags.
`

// pluginUsage is the usage of the binary installed as kubectl-spinscale,
// a kubectl plugin: `kubectl spinscale <command>`.
const pluginUsage = `Usage: kubectl spinscale <command> [flags]

Commands:
  status         show the apps as the controller last decided them (like kubectl get hpa)
  shadow-report  compare the decisions of apps in shadow mode with their live autoscaler
  version        print the version

Run 'kubectl spinscale <command> --help' for a command's flags.
`

// pluginName is the binary's name as a kubectl plugin.
const pluginName = "kubectl-spinscale"

func main() {
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == pluginName {
		os.Exit(runPlugin(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// runPlugin dispatches the command line of `kubectl spinscale`: the
// commands that read the controller's status, and version.
func runPlugin(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, pluginUsage)
		return exitUsage
	}
	switch args[0] {
	case "status", "shadow-report", "version", "--version":
		return run(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, pluginUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "kubectl spinscale: unknown command %q\n\n%s", args[0], pluginUsage)
		return exitUsage
	}
}

// run dispatches a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runRun(args[1:], stdout, stderr)
	case "simulate":
		return runSimulate(args[1:], stdout, stderr)
	case "convert":
		return runConvert(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "shadow-report":
		return runShadowReport(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version.String())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "autoscaler: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
