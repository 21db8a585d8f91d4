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
  activator      run the HTTP activator: a proxy that holds requests for apps at zero and counts them
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

// command runs a subcommand on its arguments and returns the exit code.
type command func(args []string, stdout, stderr io.Writer) int

// commands are autoscaler's subcommands.
var commands = map[string]command{
	"run":           runRun,
	"simulate":      runSimulate,
	"convert":       runConvert,
	"status":        runStatus,
	"shadow-report": runShadowReport,
	"activator":     runActivator,
	"version":       runVersion,
	"--version":     runVersion,
}

// pluginCommands are those of `kubectl spinscale`: the commands that read
// the controller's status, and version.
var pluginCommands = map[string]command{
	"status":        runStatus,
	"shadow-report": runShadowReport,
	"version":       runVersion,
	"--version":     runVersion,
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version.String())
	return exitOK
}

// run dispatches a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return dispatch("autoscaler", usage, commands, args, stdout, stderr)
}

// runPlugin dispatches the command line of `kubectl spinscale`.
func runPlugin(args []string, stdout, stderr io.Writer) int {
	return dispatch("kubectl spinscale", pluginUsage, pluginCommands, args, stdout, stderr)
}

// dispatch runs the command args name: help on stdout, an unknown or
// missing command with the usage on stderr (exit 2).
func dispatch(prog, usage string, commands map[string]command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd(args[1:], stdout, stderr)
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", prog, args[0], usage)
		return exitUsage
	}
}
