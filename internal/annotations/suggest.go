package annotations

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// This file warns about unknown keys under the prefix, with a "did you
// mean" suggestion for a likely typo.

// unknownKeys warns about every key under the prefix that is not known, with
// a suggestion when a known key is close.
func unknownKeys(ann map[string]string) []string {
	var unknown []string
	for k := range ann {
		if strings.HasPrefix(k, Prefix) && !IsKey(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	var out []string
	for _, k := range unknown {
		// A key with control characters or invalid UTF-8 is shown quoted,
		// so that it cannot forge a log line.
		shown := k
		if q := strconv.QuoteToGraphic(k); q != `"`+k+`"` {
			shown = q
		}
		if s := suggest(k); s != "" {
			out = append(out, fmt.Sprintf("%s: unknown annotation (did you mean %s?)", shown, s))
		} else {
			out = append(out, fmt.Sprintf("%s: unknown annotation, ignored", shown))
		}
	}
	return out
}

// suggest returns the known key closest to k, if within edit distance 2.
func suggest(k string) string {
	name := strings.ToLower(strings.TrimPrefix(k, Prefix))
	best, bestDist := "", 3
	for _, known := range keys {
		kn := strings.TrimPrefix(known, Prefix)
		if d := editDistance(name, kn, bestDist); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in runes, or
// limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if abs(len(ra)-len(rb)) >= limit {
		return limit
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(rb)], limit)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
