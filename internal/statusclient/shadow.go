package statusclient

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/spinscale/spinscale/internal/status"
)

// shadowText is a shadow comparison's numbers as the report shows them.
type shadowText struct {
	decisions, agree, higher, lower, sooner, later, missed string
}

// shadowCells formats the counts with their means: "3 (+1.5)" replicas,
// "4 (34s)" seconds; a mean is left out when nothing was counted.
func shadowCells(s *status.Shadow) shadowText {
	withMean := func(n int, format string, mean float64) string {
		if n == 0 {
			return "0"
		}
		return fmt.Sprintf("%d ("+format+")", n, mean)
	}
	return shadowText{
		decisions: fmt.Sprint(s.Decisions),
		agree:     fmt.Sprintf("%.0f%%", 100*s.AgreementRate),
		higher:    withMean(s.Higher, "+%.1f", s.MeanHigher),
		lower:     withMean(s.Lower, "-%.1f", s.MeanLower),
		sooner:    withMean(s.Sooner, "%.0fs", s.MeanSoonerSeconds),
		later:     withMean(s.Later, "%.0fs", s.MeanLaterSeconds),
		missed:    fmt.Sprint(s.Missed),
	}
}

// WriteShadowReport prints, for the apps in shadow mode, how Spinscale's
// decisions compare with the live autoscaler's: a table, then one verdict
// line per app. Apps not in shadow mode are left out.
func WriteShadowReport(w io.Writer, l status.List, allNamespaces bool) error {
	var apps []*status.App
	for i := range l.Apps {
		if l.Apps[i].Shadow != nil {
			apps = append(apps, &l.Apps[i])
		}
	}
	if len(apps) == 0 {
		_, err := fmt.Fprintln(w, "no app is in shadow mode")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := []string{"NAME", "DECISIONS", "AGREE %", "HIGHER", "LOWER", "SOONER", "LATER", "MISSED"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	writeRow(tw, header)
	for _, a := range apps {
		c := shadowCells(a.Shadow)
		row := []string{a.Name, c.decisions, c.agree, c.higher, c.lower, c.sooner, c.later, c.missed}
		if allNamespaces {
			row = append([]string{a.Namespace}, row...)
		}
		writeRow(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, a := range apps {
		name := a.Name
		if allNamespaces {
			name = a.Namespace + "/" + a.Name
		}
		if _, err := fmt.Fprintf(w, "%s: %s\n", name, Verdict(a.Shadow)); err != nil {
			return err
		}
	}
	return nil
}

// Verdict sums a shadow comparison up in one line: how often Spinscale
// agreed, whether it would have moved sooner or later than the live
// autoscaler (the net mean lead over the moves it asked for), the moves it
// missed, and which way it leans when it disagrees.
func Verdict(s *status.Shadow) string {
	if s.Decisions == 0 {
		return "no decision yet"
	}
	parts := []string{fmt.Sprintf("agrees with the live count in %.0f%% of %d decisions", 100*s.AgreementRate, s.Decisions)}
	moves := s.Sooner + s.Later
	if moves > 0 {
		lead := (float64(s.Sooner)*s.MeanSoonerSeconds - float64(s.Later)*s.MeanLaterSeconds) / float64(moves)
		switch {
		case math.Round(lead) > 0:
			parts = append(parts, fmt.Sprintf("would have scaled %.0f s sooner on average", lead))
		case math.Round(lead) < 0:
			parts = append(parts, fmt.Sprintf("would have scaled %.0f s later on average", -lead))
		default:
			parts = append(parts, "would have scaled at the same time on average")
		}
	}
	if s.Missed > 0 {
		parts = append(parts, fmt.Sprintf("never asked for %d of %d live moves", s.Missed, moves+s.Missed))
	}
	// The lean: which way the disagreeing decisions went, when one way
	// dominates.
	switch {
	case s.Higher > 2*s.Lower && s.Higher > 0:
		parts = append(parts, fmt.Sprintf("asks for more replicas when it disagrees (+%.1f on average)", s.MeanHigher))
	case s.Lower > 2*s.Higher && s.Lower > 0:
		parts = append(parts, fmt.Sprintf("asks for fewer replicas when it disagrees (-%.1f on average)", s.MeanLower))
	}
	return strings.Join(parts, "; ")
}
