package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// parseCommandFlags parses a subcommand's flags. --help prints the usage text and
// the flags on stdout (exit 0); a bad flag, or an argument the command does
// not take, is reported on stderr with the usage (exit 2). ok is false when
// the command is to return code at once.
func parseCommandFlags(fs *pflag.FlagSet, usage string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	return parseCommandFlagsArgs(fs, usage, args, 0, stdout, stderr)
}

// parseCommandFlagsArgs is parseCommandFlags for a command that takes up to
// maxArgs arguments besides its flags (fs.Args()).
func parseCommandFlagsArgs(fs *pflag.FlagSet, usage string, args []string, maxArgs int, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, on stdout for --help
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printUsage(fs, usage, stdout, stderr)
			return exitOK, false
		}
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		printUsage(fs, usage, stderr, stderr)
		return exitUsage, false
	}
	if fs.NArg() > maxArgs {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args()[maxArgs:])
		printUsage(fs, usage, stderr, stderr)
		return exitUsage, false
	}
	return exitOK, true
}

// printUsage writes the usage text and the flags' defaults to w; the flag
// set's output goes back to stderr after.
func printUsage(fs *pflag.FlagSet, usage string, w, stderr io.Writer) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(stderr)
}
