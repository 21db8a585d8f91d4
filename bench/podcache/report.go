package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// docSection is the heading of the section writeDoc owns.
const docSection = "## The pod cache: podSelector"

func selectorName(s string) string {
	if s == "" {
		return `"" (every pod)`
	}
	return "`" + s + "`"
}

// table is the result as a Markdown table.
func table(res result) string {
	var b strings.Builder
	b.WriteString("| podSelector | pods in the namespaces | pods the selector matches (API) | pods cached (controller) | caches synced after | RSS steady | RSS peak | heap in use steady | heap in use peak |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range res.runs {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %.1f s | %s | %s | %s | %s |\n", selectorName(r.selector), res.podsInNS, r.matched, r.cached,
			r.sync.Seconds(), mib(r.rssSteady), mib(r.rssPeak), mib(r.heapSteady), mib(r.heapPeak))
	}
	return b.String()
}

// reading is the paragraph that reads the result: what the selector saves,
// per unrelated pod.
func reading(res result) string {
	if len(res.runs) != 2 {
		return ""
	}
	all, sel := res.runs[0], res.runs[1]
	unrelated := res.podsInNS - res.appPods
	var b strings.Builder
	fmt.Fprintf(&b, "With every pod cached, the controller held %s resident (steady; peak %s) and %s of Go heap in use for %d pods, %d of them not SpinKube's. ",
		mib(all.rssSteady), mib(all.rssPeak), mib(all.heapSteady), res.podsInNS, unrelated)
	fmt.Fprintf(&b, "With the chart's default `podSelector: %s`, which matches the %d app pods only, it held %s resident (peak %s) and %s of heap: ",
		appLabel, sel.matched, mib(sel.rssSteady), mib(sel.rssPeak), mib(sel.heapSteady))
	if unrelated > 0 {
		fmt.Fprintf(&b, "%s less resident memory and %s less heap, %.1f KiB and %.1f KiB per unrelated pod. ",
			mib(all.rssSteady-sel.rssSteady), mib(all.heapSteady-sel.heapSteady),
			float64(all.rssSteady-sel.rssSteady)/1024/float64(unrelated), float64(all.heapSteady-sel.heapSteady)/1024/float64(unrelated))
	}
	fmt.Fprintf(&b, "The caches synced in %.1f s against %.1f s. ", all.sync.Seconds(), sel.sync.Seconds())
	fmt.Fprintf(&b, "The pod informer trims each pod only after decoding it whole, so filling the cache costs more heap than what stays cached (peak %s against steady %s without the selector). ",
		mib(all.heapPeak), mib(all.heapSteady))
	b.WriteString("The selector is applied by kube-apiserver: the unrelated pods are neither sent nor decoded. ")
	b.WriteString("Without it the controller's memory grows with every workload of the watched namespaces; with it, with the Spin apps' pods only, ")
	b.WriteString("and the RSS goal above (300 MiB at 25,000 pods) concerns those. ")
	b.WriteString("The controller exports no count of its cached pods; the matched counts come from listing the pods with the same selector.")
	return b.String()
}

// section is the whole Markdown section.
func section(o options, res result) string {
	var b strings.Builder
	b.WriteString(docSection + "\n\n")
	fmt.Fprintf(&b, "Measured by `make bench-podcache` (bench/podcache.sh, which runs `bench/podcache`) on %s, %s.\n\n", machine(), res.date.Format("2006-01-02"))
	b.WriteString("```\n" + o.cmdline + "\n```\n\n")
	fmt.Fprintf(&b, "On a control plane of its own ([hack/cluster](../hack/cluster/README.md): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with %d fake nodes; no metrics-server, as the controller caches pods without metrics), the bench creates %d opted-in Spin apps of %d pods (SpinKube's label `%s` on the pod template, `spinscale.dev/target-cpu-utilization: \"50\"`) and %d unrelated Deployments without that label holding %d pods in all, in the same %d namespaces, and waits until every pod is Running. ",
		res.nodes, o.apps, o.appPods, appLabel, min(o.deployments, max(o.unrelated, 1)), o.unrelated, o.namespaces)
	fmt.Fprintf(&b, "Setup took %s. Then it runs the real `bin/autoscaler run` twice, one after the other, watching those namespaces, with `dryRun=true` (it writes nothing) and leader election off: once with `podSelector=\"\"` (every pod cached) and once with `podSelector=%s` (the chart's default). ",
		res.setup.Round(1e9), appLabel)
	fmt.Fprintf(&b, "Each run lasts %s after its caches synced (`/readyz`); `VmRSS` (from /proc) and `go_memstats_heap_inuse_bytes` (from its /metrics) are sampled every second from its start: steady is the median of the last %s, peak the largest sample; /readyz is polled once a second, so the sync time is to the second.\n\n",
		o.hold, o.window)
	b.WriteString(table(res))
	b.WriteString("\n" + reading(res) + "\n")
	return b.String()
}

// writeDoc replaces the section in the Markdown file (up to the next
// second-level heading), or appends it.
func writeDoc(path string, o options, res result) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	out := replaceSection(string(old), docSection, section(o, res))
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// replaceSection puts body in place of the section headed heading (which
// ends at the next "## " line), or at the end of doc.
func replaceSection(doc, heading, body string) string {
	lines := strings.SplitAfter(doc, "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		if start < 0 && t == heading {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	body = strings.TrimRight(body, "\n") + "\n"
	if start < 0 {
		doc = strings.TrimRight(doc, "\n")
		if doc == "" {
			return body
		}
		return doc + "\n\n" + body
	}
	rest := strings.Join(lines[end:], "")
	if rest != "" {
		body += "\n"
	}
	return strings.Join(lines[:start], "") + body + rest
}

// machine names the CPU count and memory.
func machine() string {
	mem := ""
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscan(rest, &kb); err == nil {
					mem = fmt.Sprintf(", %.0f GiB of memory", float64(kb)/(1<<20))
				}
			}
		}
		_ = f.Close()
	}
	return fmt.Sprintf("%s/%s, %d CPUs%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), mem)
}
