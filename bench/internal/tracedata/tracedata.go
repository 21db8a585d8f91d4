// Package tracedata reads the real per-second request-rate traces the
// benches replay (NASA-HTTP 1995 and the Twitter stream 2021, see
// bench/traces/README.md): each is a tar.bz2 archive holding one
// workload.txt of space-separated per-second counts.
package tracedata

import (
	"archive/tar"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Archive describes one of the real traces.
type Archive struct {
	// Name is a short name: nasa, twitter.
	Name string
	// File is the archive's file name.
	File string
	// Source says what the counts are.
	Source string
}

// Archives are the two real traces, in a fixed order.
var Archives = []Archive{
	{"nasa", "nasa-1995-per-second.tbz2", "NASA-HTTP (Internet Traffic Archive): every HTTP request to the NASA Kennedy Space Center web server, July-August 1995, counted per second"},
	{"twitter", "twitter-stream-per-second.tbz2", "Archive Team Twitter stream, August 2021: tweets per second"},
}

// ReadCounts reads workload.txt from a tar.bz2 archive: one count a second.
func ReadCounts(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(bzip2.NewReader(f))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no workload.txt", path)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if filepath.Base(h.Name) != "workload.txt" {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		fields := strings.Fields(string(body))
		counts := make([]float64, len(fields))
		for i, s := range fields {
			if counts[i], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("%s: value %d: %w", path, i, err)
			}
		}
		return counts, nil
	}
}

// Prefix returns the running sums of counts: cum[i] is the sum of the first
// i counts, so the sum over [a, b) is cum[b] − cum[a].
func Prefix(counts []float64) []float64 {
	cum := make([]float64, len(counts)+1)
	for i, c := range counts {
		cum[i+1] = cum[i] + c
	}
	return cum
}
