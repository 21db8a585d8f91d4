package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMedianSince(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := []sampleAt{{t0, 900}, {t0.Add(time.Second), 30}, {t0.Add(2 * time.Second), 10}, {t0.Add(3 * time.Second), 20}}
	v, n := medianSince(s, t0.Add(time.Second))
	assert.Equal(t, int64(20), v, "odd count: the middle one; the sample before from is left out")
	assert.Equal(t, 3, n)
	v, n = medianSince(s, t0.Add(2*time.Second))
	assert.Equal(t, int64(15), v, "even count: the mean of the two middle ones")
	assert.Equal(t, 2, n)
	_, n = medianSince(s, t0.Add(time.Minute))
	assert.Equal(t, 0, n)
	assert.Equal(t, int64(900), peak(s))
}

func TestFindValue(t *testing.T) {
	text := "# HELP go_memstats_heap_inuse_bytes x\n# TYPE go_memstats_heap_inuse_bytes gauge\n" +
		"go_memstats_heap_inuse_bytes_total 1\ngo_memstats_heap_inuse_bytes 1.5e+07\nspinscale_apps 50\n"
	v, err := findValue(strings.NewReader(text), "go_memstats_heap_inuse_bytes")
	require.NoError(t, err)
	assert.Equal(t, 1.5e7, v)
	_, err = findValue(strings.NewReader(text), "missing")
	assert.ErrorContains(t, err, "metric missing: not exposed")
	_, err = findValue(strings.NewReader("x abc\n"), "x")
	assert.ErrorContains(t, err, `value "abc"`)
}

func TestNewLayoutSpreadsTheUnrelatedPods(t *testing.T) {
	l := newLayout(options{apps: 50, appPods: 3, unrelated: 1003, deployments: 4, namespaces: 3})
	require.Len(t, l.fillers, 4)
	total := 0
	for i, f := range l.fillers {
		total += f.replicas
		assert.Equal(t, l.namespaces[i%3], f.namespace)
		assert.Equal(t, "kwok-node-"+string(rune('0'+i)), f.node)
	}
	assert.Equal(t, 1003, total)
	assert.Equal(t, []int{251, 251, 251, 250}, []int{l.fillers[0].replicas, l.fillers[1].replicas, l.fillers[2].replicas, l.fillers[3].replicas})
	assert.Equal(t, 4+1, l.nodes, "one node per filler, one for 150 app pods")
	assert.Equal(t, 261, l.perNode, "room for the largest filler")
	assert.Len(t, l.apps, 50)

	none := newLayout(options{apps: 1, appPods: 3, unrelated: 0, deployments: 40, namespaces: 1})
	assert.Empty(t, none.fillers)
	assert.Equal(t, 1, none.nodes)
}

func TestValidateNamesTheFlag(t *testing.T) {
	o := options{root: ".", bin: "/nonexistent/autoscaler", portBase: 24000, apps: 0, appPods: 3, unrelated: 10, deployments: 1,
		namespaces: 1, hold: 60 * time.Second, window: 90 * time.Second, runningTimeout: time.Minute, syncTimeout: time.Minute}
	err := o.validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, "-apps: 0 is not from 1 to 5000")
	assert.ErrorContains(t, err, "-window: 1m30s is not from 1s to -hold (1m0s)")
	o.apps, o.window = 1, 30*time.Second
	assert.ErrorContains(t, o.validate(), `-bin "/nonexistent/autoscaler"`)
}

func TestReplaceSection(t *testing.T) {
	doc := "# T\n\n## A\n\na\n\n" + docSection + "\n\nold\n\n## B\n\nb\n"
	got := replaceSection(doc, docSection, docSection+"\n\nnew\n")
	assert.Equal(t, "# T\n\n## A\n\na\n\n"+docSection+"\n\nnew\n\n## B\n\nb\n", got)
	got = replaceSection("# T\n\n## A\n\na\n", docSection, docSection+"\n\nnew\n")
	assert.Equal(t, "# T\n\n## A\n\na\n\n"+docSection+"\n\nnew\n", got, "appended when absent")
	assert.Equal(t, got, replaceSection(got, docSection, docSection+"\n\nnew\n"), "idempotent at the end of the file")
}

func TestTableAndReading(t *testing.T) {
	res := result{podsInNS: 20150, appPods: 150, runs: []runResult{
		{selector: "", matched: 20150, cached: "not reported", sync: 3 * time.Second, rssSteady: 200 << 20, rssPeak: 220 << 20, heapSteady: 120 << 20, heapPeak: 130 << 20},
		{selector: appLabel, matched: 150, cached: "not reported", sync: time.Second, rssSteady: 50 << 20, rssPeak: 55 << 20, heapSteady: 10 << 20, heapPeak: 12 << 20},
	}}
	tb := table(res)
	assert.Contains(t, tb, `| "" (every pod) | 20150 | 20150 | not reported | 3.0 s | 200.0 MiB | 220.0 MiB | 120.0 MiB | 130.0 MiB |`)
	assert.Contains(t, tb, "| `core.spinkube.dev/app-name` | 20150 | 150 | not reported | 1.0 s | 50.0 MiB |")
	r := reading(res)
	assert.Contains(t, r, "150.0 MiB less resident memory and 110.0 MiB less heap, 7.7 KiB and 5.6 KiB per unrelated pod")
}
