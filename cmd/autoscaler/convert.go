package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/spinscale/spinscale/internal/convert"
)

const convertUsage = `Usage: autoscaler convert -f FILE [--patch both|spinapp|deployment] [--output yaml|json]
       autoscaler convert --autoscaler hpa|keda [spin kube scaffold flags]

Translates autoscaling/v2 HorizontalPodAutoscalers and KEDA ScaledObjects
(cpu, memory and prometheus triggers) into Spinscale's spinscale.dev/
annotations, printed as a merge patch of the SpinApp (spec.deploymentAnnotations)
and of the Deployment. FILE may hold several YAML documents (- reads standard
input); other objects in it are skipped.

With the autoscaler flags of 'spin kube scaffold' instead of -f, it converts
what scaffold would generate (same flags, same defaults).

Every field without an exact equivalent is reported on standard error; the
exit code is 0 even then. Exit code 2: unreadable input, no autoscaler in it,
or bad flags. See docs/migrate.md.

Flags:
`

// runConvert implements `autoscaler convert`.
func runConvert(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("convert", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.StringP("filename", "f", "", "file with HorizontalPodAutoscalers and ScaledObjects, YAML or JSON; - reads standard input")
	patch := fs.String("patch", convert.PatchBoth, "patches to print: both, spinapp or deployment")
	output := fs.String("output", "yaml", "yaml (documents with comments) or json (one merge patch per line, for kubectl patch -p)")

	// spin kube scaffold's flags, names and defaults (spin plugin kube).
	sc := convert.DefaultScaffoldOptions()
	fs.StringVar(&sc.Autoscaler, "autoscaler", "", "scaffold: the autoscaler scaffold would generate: hpa or keda")
	from := fs.String("from", "", "scaffold: the app's image reference; the app is named after it, as scaffold does")
	fs.StringVar(&sc.Name, "name", "", "the app's name (default: from --from)")
	fs.Int32VarP(&sc.Replicas, "replicas", "r", sc.Replicas, "scaffold: minimum number of replicas")
	fs.Int32Var(&sc.MaxReplicas, "max-replicas", sc.MaxReplicas, "scaffold: maximum number of replicas")
	fs.Int32Var(&sc.TargetCPUUtilization, "autoscaler-target-cpu-utilization", sc.TargetCPUUtilization, "scaffold: target CPU utilization, percent of the request")
	fs.Int32Var(&sc.TargetMemoryUtilization, "autoscaler-target-memory-utilization", sc.TargetMemoryUtilization, "scaffold: target memory utilization, percent of the request")
	fs.StringVar(&sc.CPULimit, "cpu-limit", "", "scaffold: the app's CPU limit")
	fs.StringVar(&sc.MemoryLimit, "memory-limit", "", "scaffold: the app's memory limit")
	fs.StringVar(&sc.CPURequest, "cpu-request", "", "scaffold: the app's CPU request")
	fs.StringVar(&sc.MemoryRequest, "memory-request", "", "scaffold: the app's memory request")
	// Accepted so that a scaffold command line can be pasted as is; they do
	// not concern autoscaling.
	for _, name := range []string{"executor", "out", "runtime-config-file", "image-pull-secret"} {
		fs.StringArray(name, nil, "scaffold: ignored")
		_ = fs.MarkHidden(name)
	}

	if code, ok := parseCommandFlags(fs, convertUsage, args, stdout, stderr); !ok {
		return code
	}
	if *patch != convert.PatchBoth && *patch != convert.PatchSpinApp && *patch != convert.PatchDeployment {
		fmt.Fprintf(stderr, "convert: --patch: %q: allowed both, spinapp, deployment\n", *patch)
		return exitUsage
	}
	if *output != "yaml" && *output != "json" {
		fmt.Fprintf(stderr, "convert: --output: %q: allowed yaml, json\n", *output)
		return exitUsage
	}

	var results []convert.Result
	switch {
	case *file != "" && sc.Autoscaler != "":
		fmt.Fprintln(stderr, "convert: give either -f FILE or the scaffold flags (--autoscaler ...), not both")
		return exitUsage
	case *file != "":
		var data []byte
		var err error
		if *file == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*file)
		}
		if err != nil {
			fmt.Fprintf(stderr, "convert: %v\n", err)
			return exitUsage
		}
		results, err = convert.Convert(data)
		if err != nil {
			fmt.Fprintf(stderr, "convert: %s: %v\n", *file, err)
			return exitUsage
		}
	case sc.Autoscaler != "":
		if sc.Name == "" && *from != "" {
			sc.Name = convert.NameFromImage(*from)
		}
		r, err := convert.Scaffold(sc)
		if err != nil {
			fmt.Fprintf(stderr, "convert: %v\n", err)
			return exitUsage
		}
		results = []convert.Result{r}
	default:
		fmt.Fprintln(stderr, "convert: -f FILE or --autoscaler hpa|keda is required")
		printUsage(fs, convertUsage, stderr, stderr)
		return exitUsage
	}

	for _, r := range results {
		for _, w := range r.Warnings {
			fmt.Fprintf(stderr, "warning: %s: %s\n", r.Source, w)
		}
	}
	if err := convert.Write(stdout, results, *patch, *output); err != nil {
		fmt.Fprintln(stderr, "convert:", err)
		return exitFailure
	}
	return exitOK
}
