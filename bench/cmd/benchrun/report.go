package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var runHeader = []string{"tree", "entries", "scenario", "mode", "tool", "pair", "wall_s", "cpu_local_s", "cpu_remote_s",
	"rss_local_max_bytes", "rss_local_tree_bytes", "rss_remote_tree_bytes", "wire_bytes", "ok", "note", "load1", "started"}

func (r Run) record() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{r.Tree, strconv.Itoa(r.Entries), r.Scenario, r.Mode, r.Tool, strconv.Itoa(r.Pair), f(r.Wall), f(r.CPULocal), f(r.CPURem),
		i(r.RSSLocal), i(r.RSSTree), i(r.RSSRem), i(r.Wire), strconv.FormatBool(r.OK), r.Note, strconv.FormatFloat(r.Load1, 'f', 2, 64), r.Started}
}

func parseRun(rec []string) (Run, error) {
	if len(rec) != len(runHeader) {
		return Run{}, fmt.Errorf("%d fields, want %d", len(rec), len(runHeader))
	}
	var r Run
	var errs []error
	fl := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		errs = append(errs, err)
		return v
	}
	in := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		errs = append(errs, err)
		return v
	}
	r.Tree, r.Scenario, r.Mode, r.Tool, r.Note, r.Started = rec[0], rec[2], rec[3], rec[4], rec[14], rec[16]
	r.Entries = int(in(rec[1]))
	r.Pair = int(in(rec[5]))
	r.Wall, r.CPULocal, r.CPURem = fl(rec[6]), fl(rec[7]), fl(rec[8])
	r.RSSLocal, r.RSSTree, r.RSSRem, r.Wire = in(rec[9]), in(rec[10]), in(rec[11]), in(rec[12])
	r.OK = rec[13] == "true"
	r.Load1 = fl(rec[15])
	return r, errors.Join(errs...)
}

// writeResults merges the new runs with the earlier ones (unless -merge=false)
// and writes runs.csv, summary.csv, summary.md and wall.png.
func writeResults(c *config, b *bench, runs []Run) error {
	runsFile := filepath.Join(c.out, "runs.csv")
	type key struct{ tree, sc, mode string }
	fresh := map[key]bool{}
	for _, r := range runs {
		fresh[key{r.Tree, r.Scenario, r.Mode}] = true
	}
	var all []Run
	if c.merge {
		if f, err := os.Open(runsFile); err == nil {
			recs, err := csv.NewReader(f).ReadAll()
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", runsFile, err)
			}
			for _, rec := range recs[min(1, len(recs)):] {
				r, err := parseRun(rec)
				if err != nil {
					return fmt.Errorf("read %s: %w", runsFile, err)
				}
				if !fresh[key{r.Tree, r.Scenario, r.Mode}] {
					all = append(all, r)
				}
			}
		}
	}
	all = append(all, runs...)
	sortRuns(all)
	if err := writeCSV(runsFile, runHeader, func(w *csv.Writer) {
		for _, r := range all {
			w.Write(r.record())
		}
	}); err != nil {
		return err
	}
	sums := summarize(all)
	if err := writeCSV(filepath.Join(c.out, "summary.csv"), summaryHeader, func(w *csv.Writer) {
		for _, s := range sums {
			w.Write(s.record())
		}
	}); err != nil {
		return err
	}
	if err := writeMarkdown(filepath.Join(c.out, "summary.md"), c, b, sums); err != nil {
		return err
	}
	if err := writePlot(filepath.Join(c.out, "wall.png"), sums); err != nil {
		return err
	}
	return writeRSSPlot(filepath.Join(c.out, "rss.png"), sums)
}

func writeCSV(path string, header []string, body func(*csv.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(header)
	body(w)
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func kindOrder(tree string) int {
	switch {
	case strings.HasPrefix(tree, "syn"):
		return 0
	case strings.HasPrefix(tree, "debian"):
		return 1
	}
	return 2
}

func scenarioOrder(s string) int { return slices.Index(allScenarios, s) }

func lessGroup(at, bt string, ae, be int, as, bs, am, bm string) bool {
	if kindOrder(at) != kindOrder(bt) {
		return kindOrder(at) < kindOrder(bt)
	}
	if ae != be {
		return ae < be
	}
	if at != bt {
		return at < bt
	}
	if as != bs {
		return scenarioOrder(as) < scenarioOrder(bs)
	}
	return am > bm // warm before cold
}

func sortRuns(rs []Run) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Tree != b.Tree || a.Scenario != b.Scenario || a.Mode != b.Mode {
			return lessGroup(a.Tree, b.Tree, a.Entries, b.Entries, a.Scenario, b.Scenario, a.Mode, b.Mode)
		}
		if a.Pair != b.Pair {
			return a.Pair < b.Pair
		}
		return a.Tool > b.Tool // rsync before goldsync, as they ran
	})
}

// toolStats summarize one tool's runs in a group.
type toolStats struct {
	N                         int
	WallMed, WallMin, WallMax float64
	CPULocal, CPURem          float64 // medians
	RSSLocal, RSSTree, RSSRem int64   // peaks over the runs
	Wire                      int64   // median
	Note                      string  // why there are no runs
	pairs                     map[int]float64
	failed                    int
}

// summary is one tree × scenario × mode.
type summary struct {
	Tree                  string
	Entries               int
	Scenario, Mode        string
	Base                  string // rsync, or cp-loop for the snapshot build
	B, G                  toolStats
	F                     toolStats // the copy floor (tar), full pulls only
	WallRatio             float64   // median over pairs of goldsync/base
	FloorRatio            float64   // median over pairs of goldsync/floor
	WireRatio             float64
	RSSRatio, RSSRemRatio float64
	CPURatio              float64 // (local+remote) medians
	Load                  float64 // median load average
	Started               string
}

var summaryHeader = []string{"tree", "entries", "scenario", "mode", "baseline",
	"base_n", "base_wall_med_s", "base_wall_min_s", "base_wall_max_s", "base_cpu_local_s", "base_cpu_remote_s", "base_rss_local_max_bytes", "base_rss_local_tree_bytes", "base_rss_remote_bytes", "base_wire_bytes",
	"gs_n", "gs_wall_med_s", "gs_wall_min_s", "gs_wall_max_s", "gs_cpu_local_s", "gs_cpu_remote_s", "gs_rss_local_max_bytes", "gs_rss_local_tree_bytes", "gs_rss_remote_bytes", "gs_wire_bytes",
	"wall_ratio_median", "cpu_ratio", "rss_local_ratio", "rss_remote_ratio", "wire_ratio", "load1_median", "started", "note",
	"floor_n", "floor_wall_med_s", "floor_wall_min_s", "floor_wall_max_s", "floor_cpu_local_s", "floor_cpu_remote_s", "floor_rss_local_max_bytes", "floor_rss_local_tree_bytes", "floor_rss_remote_bytes", "floor_wire_bytes",
	"wall_ratio_floor_median", "gs_rss_local_bytes_per_entry", "gs_rss_remote_bytes_per_entry"}

func (s summary) record() []string {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	ts := func(t toolStats) []string {
		return []string{strconv.Itoa(t.N), f(t.WallMed), f(t.WallMin), f(t.WallMax), f(t.CPULocal), f(t.CPURem), i(t.RSSLocal), i(t.RSSTree), i(t.RSSRem), i(t.Wire)}
	}
	out := []string{s.Tree, strconv.Itoa(s.Entries), s.Scenario, s.Mode, s.Base}
	out = append(out, ts(s.B)...)
	out = append(out, ts(s.G)...)
	note := strings.TrimSpace(s.G.Note + " " + s.B.Note)
	out = append(out, f(s.WallRatio), f(s.CPURatio), f(s.RSSRatio), f(s.RSSRemRatio), f(s.WireRatio), f(s.Load), s.Started, note)
	out = append(out, ts(s.F)...)
	return append(out, f(s.FloorRatio), f(perEntry(s.G.RSSTree, s.Entries)), f(perEntry(s.G.RSSRem, s.Entries)))
}

// perEntry is a peak RSS in bytes per entry of the tree.
func perEntry(rss int64, entries int) float64 {
	if rss <= 0 || entries <= 0 {
		return math.NaN()
	}
	return float64(rss) / float64(entries)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func stats(rs []Run) toolStats {
	t := toolStats{pairs: map[int]float64{}}
	var wall, cl, cr, wire []float64
	for _, r := range rs {
		if !r.OK {
			t.failed++
			if t.Note == "" {
				t.Note = r.Note
			}
			continue
		}
		t.N++
		wall = append(wall, r.Wall)
		cl = append(cl, r.CPULocal)
		cr = append(cr, r.CPURem)
		wire = append(wire, float64(r.Wire))
		t.RSSLocal = max(t.RSSLocal, r.RSSLocal)
		t.RSSTree = max(t.RSSTree, r.RSSTree)
		t.RSSRem = max(t.RSSRem, r.RSSRem)
		t.pairs[r.Pair] = r.Wall
	}
	t.WallMed, t.CPULocal, t.CPURem = median(wall), median(cl), median(cr)
	t.WallMin, t.WallMax = math.NaN(), math.NaN()
	if len(wall) > 0 {
		t.WallMin, t.WallMax = slices.Min(wall), slices.Max(wall)
	}
	if len(wire) > 0 {
		t.Wire = int64(median(wire))
	}
	if t.N > 0 {
		t.Note = ""
		if t.failed > 0 {
			t.Note = fmt.Sprintf("%d runs failed", t.failed)
		}
	}
	return t
}

func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

func summarize(all []Run) []summary {
	type key struct{ tree, sc, mode string }
	groups := map[key][]Run{}
	var order []key
	for _, r := range all {
		k := key{r.Tree, r.Scenario, r.Mode}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []summary
	for _, k := range order {
		rs := groups[k]
		s := summary{Tree: k.tree, Entries: rs[0].Entries, Scenario: k.sc, Mode: k.mode, Base: toolRsync, Started: rs[0].Started}
		var base, gs, floor []Run
		var loads []float64
		for _, r := range rs {
			loads = append(loads, r.Load1)
			switch r.Tool {
			case toolGoldsync:
				gs = append(gs, r)
			case toolTar:
				floor = append(floor, r)
			default:
				base = append(base, r)
			}
		}
		if isPush(k.sc) && len(base) == 0 {
			// push not measured: show rsync's pull of the same change.
			for _, r := range groups[key{k.tree, "yum", k.mode}] {
				if r.Tool == toolRsync {
					base = append(base, r)
				}
			}
		}
		if k.sc == "snapshot" {
			s.Base = toolCp
		}
		s.Load = median(loads)
		s.B, s.G = stats(base), stats(gs)
		var pr []float64
		for p, g := range s.G.pairs {
			if bw, ok := s.B.pairs[p]; ok && bw > 0 {
				pr = append(pr, g/bw)
			}
		}
		s.WallRatio = median(pr)
		s.F = stats(floor)
		pr = pr[:0]
		for p, g := range s.G.pairs {
			if fw, ok := s.F.pairs[p]; ok && fw > 0 {
				pr = append(pr, g/fw)
			}
		}
		s.FloorRatio = median(pr)
		s.CPURatio = ratio(s.G.CPULocal+s.G.CPURem, s.B.CPULocal+s.B.CPURem)
		s.RSSRatio = ratio(float64(s.G.RSSTree), float64(s.B.RSSTree))
		s.RSSRemRatio = ratio(float64(s.G.RSSRem), float64(s.B.RSSRem))
		s.WireRatio = ratio(float64(s.G.Wire), float64(s.B.Wire))
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return lessGroup(a.Tree, b.Tree, a.Entries, b.Entries, a.Scenario, b.Scenario, a.Mode, b.Mode)
	})
	return out
}

// targets are the ratios goldsync is held to (goldsync / baseline).
var targets = []struct {
	scenario, what string
	limit          float64
	value          func(summary) float64
	trees          string // "sparse" for the sparse-heavy tree only, "" for all but sparse
}{
	{scenario: "full", what: "wall, full pull", limit: 0.5, value: func(s summary) float64 { return s.WallRatio }},
	{scenario: "full", what: "wall, full pull vs the copy floor (ssh tar | tar)", limit: 1.0, value: func(s summary) float64 { return s.FloorRatio }},
	{scenario: "nochange", what: "wall, no change", limit: 0.1, value: func(s summary) float64 { return s.WallRatio }},
	{scenario: "push", what: "wall, agent push of a yum-like change (vs rsync's pull of it)", limit: 0.05, value: func(s summary) float64 { return s.WallRatio }},
	{scenario: "push-shared", what: "wall, agent push over a shared ssh connection (watch --push-to) vs rsync's pull of the change", limit: 0.05, value: func(s summary) float64 { return s.WallRatio }},
	{scenario: "full", what: "bytes on the wire, sparse-heavy tree", limit: 0.2, value: func(s summary) float64 { return s.WireRatio }, trees: "sparse"},
	{scenario: "*", what: "peak RSS, image-server side", limit: 1.5, value: func(s summary) float64 { return s.RSSRatio }},
	{scenario: "*", what: "peak RSS, golden-node side", limit: 1.5, value: func(s summary) float64 { return s.RSSRemRatio }},
	{scenario: "snapshot", what: "wall, snapshot build for 128 nodes (vs cp -a --parents loop)", limit: 0.3, value: func(s summary) float64 { return s.WallRatio }},
}

func fmtF(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func fmtMiB(n int64) string {
	if n <= 0 {
		return "–"
	}
	v := float64(n) / (1 << 20)
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func wallCell(t toolStats) string {
	if t.N == 0 {
		if t.Note != "" {
			return t.Note
		}
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", fmtF(t.WallMed, 2), fmtF(t.WallMin, 2), fmtF(t.WallMax, 2))
}

func writeMarkdown(path string, c *config, b *bench, sums []summary) error {
	// Without a run (-report-only) the notes of the last run stay.
	var oldNotes string
	if b == nil {
		if old, err := os.ReadFile(path); err == nil {
			if i := strings.Index(string(old), "\n## Notes from"); i >= 0 {
				oldNotes = string(old[i+1:])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := io.Writer(f)
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# goldsync vs rsync: results\n\n")
	p("Written by `bench/cmd/benchrun` on %s. Raw runs: `runs.csv`; per-group figures: `summary.csv`; plot: `wall.png`.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("Machine: %s, %d CPUs, kernel %s; %s; %s.\n\n", cpuModel(), runtime.NumCPU(), strings.TrimSpace(cmdOut("uname", "-r")),
		firstLine(cmdOut("rsync", "--version")), strings.TrimSpace(firstLine(cmdOut("ssh", "-V"))))
	p("Wall in seconds: median (min–max) over the pairs; ratio = goldsync/baseline per pair, median. CPU: median seconds, local + remote. ")
	p("RSS: peak MiB, image-server side (the tool's whole process tree, sampled) / golden-node side. Wire: median MiB, both directions, above ssh. ")
	p("Load: median 1-minute load average at the start of the runs (2 shared cores).\n\n")
	p("| tree | entries | scenario | mode | rsync wall s | goldsync wall s | wall ratio | CPU s rsync | CPU s goldsync | RSS MiB rsync | RSS MiB goldsync | wire MiB rsync | wire MiB goldsync | wire ratio | load |\n")
	p("|---|---:|---|---|---|---|---:|---|---|---|---|---:|---:|---:|---:|\n")
	for _, s := range sums {
		scen := s.Scenario
		if s.Base == toolCp {
			scen += " (baseline: cp loop)"
		}
		if isPush(s.Scenario) {
			scen += " (rsync: yum pull)"
		}
		cpu := func(t toolStats) string {
			if t.N == 0 {
				return "–"
			}
			return fmtF(t.CPULocal, 1) + " + " + fmtF(t.CPURem, 1)
		}
		rss := func(t toolStats) string {
			if t.N == 0 {
				return "–"
			}
			return fmtMiB(t.RSSTree) + " / " + fmtMiB(t.RSSRem)
		}
		wire := func(t toolStats) string {
			if t.N == 0 || t.Wire == 0 {
				return "–"
			}
			return fmtMiB(t.Wire)
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Tree, s.Entries, scen, s.Mode,
			wallCell(s.B), wallCell(s.G), fmtF(s.WallRatio, 2), cpu(s.B), cpu(s.G), rss(s.B), rss(s.G), wire(s.B), wire(s.G), fmtF(s.WireRatio, 2), fmtF(s.Load, 1))
	}
	p("\n## Full pulls against the copy floor\n\n")
	p("The floor is `ssh golden 'tar -C SRC --xattrs --acls --numeric-owner --sparse -cf - .' | tar -C DEST --xattrs --xattrs-include='*' --acls --numeric-owner -xpf -` ")
	p("into an empty dir, over the same sshd, in the same pairs (rsync, goldsync, tar).\n\n")
	p("| tree | entries | mode | tar wall s | goldsync wall s | goldsync/tar | CPU s tar | RSS MiB tar | wire MiB tar |\n|---|---:|---|---|---|---:|---|---|---:|\n")
	for _, s := range sums {
		if s.Scenario != "full" || s.F.N == 0 {
			continue
		}
		p("| %s | %d | %s | %s | %s | %s | %s + %s | %s / %s | %s |\n", s.Tree, s.Entries, s.Mode, wallCell(s.F), wallCell(s.G), fmtF(s.FloorRatio, 2),
			fmtF(s.F.CPULocal, 1), fmtF(s.F.CPURem, 1), fmtMiB(s.F.RSSTree), fmtMiB(s.F.RSSRem), fmtMiB(s.F.Wire))
	}
	p("\n## Memory per entry\n\nPeak RSS (MiB) and bytes per entry of the tree, image server / golden node; plot: `rss.png`.\n\n")
	p("| tree | entries | scenario | mode | rsync MiB | goldsync MiB | goldsync B/entry | tar MiB |\n|---|---:|---|---|---|---|---|---|\n")
	for _, s := range sums {
		if s.Scenario == "snapshot" || isPush(s.Scenario) || s.G.N == 0 {
			continue
		}
		two := func(t toolStats) string {
			if t.N == 0 {
				return "–"
			}
			return fmtMiB(t.RSSTree) + " / " + fmtMiB(t.RSSRem)
		}
		p("| %s | %d | %s | %s | %s | %s | %s / %s | %s |\n", s.Tree, s.Entries, s.Scenario, s.Mode, two(s.B), two(s.G),
			fmtF(perEntry(s.G.RSSTree, s.Entries), 0), fmtF(perEntry(s.G.RSSRem, s.Entries), 0), two(s.F))
	}
	p("\n## Against the targets\n\n| target | limit | measured (tree, mode) | met |\n|---|---:|---|---|\n")
	type scored struct {
		v    float64
		what string
	}
	for _, tg := range targets {
		var cells []string
		var all []scored
		met, seen := true, false
		for _, s := range sums {
			if tg.scenario != "*" && s.Scenario != tg.scenario {
				continue
			}
			if tg.scenario == "*" && (s.Scenario == "snapshot" || isPush(s.Scenario)) {
				continue
			}
			isSparse := strings.HasPrefix(s.Tree, "sparse")
			if (tg.trees == "sparse") != isSparse {
				continue
			}
			v := tg.value(s)
			if math.IsNaN(v) {
				continue
			}
			seen = true
			if v > tg.limit {
				met = false
			}
			if tg.scenario == "*" {
				all = append(all, scored{v, fmt.Sprintf("%s %s %s", s.Tree, s.Scenario, s.Mode)})
				continue
			}
			cells = append(cells, fmt.Sprintf("%.2f (%s %s)", v, s.Tree, s.Mode))
		}
		if len(all) > 0 {
			// Too many groups to list: the range, and how many miss.
			lo, hi, over := all[0], all[0], 0
			for _, a := range all {
				if a.v < lo.v {
					lo = a
				}
				if a.v > hi.v {
					hi = a
				}
				if a.v > tg.limit {
					over++
				}
			}
			cells = []string{fmt.Sprintf("%.2f (%s) to %.2f (%s); %d of %d groups over", lo.v, lo.what, hi.v, hi.what, over, len(all))}
		}
		verdict := "yes"
		switch {
		case !seen:
			verdict, cells = "n/a", []string{"not measured"}
		case !met:
			verdict = "**no**"
		}
		p("| %s | %.2f× | %s | %s |\n", tg.what, tg.limit, strings.Join(cells, ", "), verdict)
	}
	if b == nil {
		p("\n%s", oldNotes)
		return f.Close()
	}
	p("\n## Notes from this invocation\n\n")
	p("- Invocation: `%s`\n", strings.Join(os.Args, " "))
	for _, n := range c.notes {
		p("- %s\n", n)
	}
	if b != nil {
		keys := make([]string, 0, len(b.verify))
		for k := range b.verify {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p("- Check of %s after the full pull (`rsync -naHAXS --numeric-ids --delete -i`): %s\n", k, b.verify[k])
		}
		p("- push: %s\n", b.pushNote)
		p("- push-shared: %s\n", b.sharedNote)
		p("- Command lines (SRC and DEST per tree):\n\n```\n")
		for _, tool := range tools(b.c.noFloor) {
			cmd := b.command(context.Background(), &tree{dir: "SRC"}, tool, noPush)
			line := commandLine(cmd)
			line = strings.Replace(line, b.dest(&tree{}, tool), "DEST", 1)
			p("%s\n", line)
		}
		if b.pushOK {
			line := commandLine(b.command(context.Background(), &tree{dir: "SRC"}, toolGoldsync, pushLogin))
			p("%s\n", strings.Replace(line, b.dest(&tree{}, toolGoldsync), "DEST", 1))
		}
		if b.sharedOK {
			line := commandLine(b.command(context.Background(), &tree{dir: "SRC"}, toolGoldsync, pushShared))
			p("%s   # push-shared\n", strings.Replace(line, b.dest(&tree{}, toolGoldsync), "DEST", 1))
		}
		if b.pushOK {
			p("%s --root SRC --state-dir %s watch --backend %s   # in the background during the push scenarios\n",
				filepath.Join(b.c.bin, "goldsync-agent"), b.agentDir, b.c.watchBack)
		}
		p("```\n")
	}
	return f.Close()
}

func cmdOut(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return string(out)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.IndexByte(l, ':'); i >= 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return "unknown CPU"
}

// writePlot draws median wall time against entry count for both tools,
// full pull and no change, warm (solid) and cold (dashed), synthetic trees.
func writePlot(path string, sums []summary) error {
	p := plot.New()
	p.Title.Text = "goldsync vs rsync over ssh: wall time by tree size (synthetic trees)"
	p.X.Label.Text = "entries in the tree"
	p.Y.Label.Text = "wall time, median (s)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks125{si: true}, ticks125{}
	p.Legend.Top = true
	p.Legend.Left = true
	colors := map[string]color.Color{
		"rsync full":        color.RGBA{R: 200, G: 40, B: 40, A: 255},
		"goldsync full":     color.RGBA{R: 30, G: 90, B: 200, A: 255},
		"rsync nochange":    color.RGBA{R: 240, G: 140, B: 40, A: 255},
		"goldsync nochange": color.RGBA{R: 40, G: 160, B: 90, A: 255},
	}
	n := 0
	for _, sc := range []string{"full", "nochange"} {
		for _, mode := range []string{"warm", "cold"} {
			for _, tool := range []string{toolRsync, toolGoldsync} {
				var xys plotter.XYs
				for _, s := range sums {
					if s.Scenario != sc || s.Mode != mode || !strings.HasPrefix(s.Tree, "syn") {
						continue
					}
					t := s.B
					if tool == toolGoldsync {
						t = s.G
					}
					if t.N == 0 || t.WallMed <= 0 {
						continue
					}
					xys = append(xys, plotter.XY{X: float64(s.Entries), Y: t.WallMed})
				}
				if len(xys) == 0 {
					continue
				}
				sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
				l, pts, err := plotter.NewLinePoints(xys)
				if err != nil {
					return err
				}
				c := colors[tool+" "+sc]
				l.Color, pts.Color = c, c
				l.Width = vg.Points(1.5)
				pts.Shape = draw.CircleGlyph{}
				if mode == "cold" {
					l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
					pts.Shape = draw.TriangleGlyph{}
				}
				p.Add(l, pts)
				p.Legend.Add(fmt.Sprintf("%s %s %s", tool, sc, mode), l, pts)
				n++
			}
		}
	}
	if n == 0 {
		return nil // nothing to plot (no synthetic full/no-change runs)
	}
	p.Add(plotter.NewGrid())
	p.Y.Max *= 4 // headroom for the legend
	return p.Save(8*vg.Inch, 5.5*vg.Inch, path)
}

// ticks125 labels a log axis at 1, 2 and 5 times the powers of ten, so a
// range within one decade still gets labels. With si, 1000 and up are
// written 10k, 200k, 1M (not 1e+06).
type ticks125 struct{ si bool }

func (t ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: t.label(v)})
			}
		}
	}
	return ts
}

func (t ticks125) label(v float64) string {
	switch {
	case t.si && v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', -1, 64) + "M"
	case t.si && v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// writeRSSPlot draws peak RSS against entry count, warm runs of the
// synthetic trees: goldsync's and rsync's image-server side (solid) and
// golden-node side (dashed) for the full, no-change and yum scenarios, and
// the tar floor's.
func writeRSSPlot(path string, sums []summary) error {
	p := plot.New()
	p.Title.Text = "peak RSS by tree size (synthetic trees, warm)"
	p.X.Label.Text = "entries in the tree"
	p.Y.Label.Text = "peak RSS (MiB)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks125{si: true}, ticks125{}
	p.Legend.Top = true
	p.Legend.Left = true
	palette := []color.Color{
		color.RGBA{R: 30, G: 90, B: 200, A: 255}, color.RGBA{R: 40, G: 160, B: 90, A: 255}, color.RGBA{R: 120, G: 60, B: 180, A: 255},
		color.RGBA{R: 200, G: 40, B: 40, A: 255}, color.RGBA{R: 240, G: 140, B: 40, A: 255}, color.RGBA{R: 120, G: 120, B: 120, A: 255},
		color.RGBA{A: 255}, // tar: one color a series, none shared
	}
	type series struct {
		tool, sc string
		pick     func(summary) toolStats
	}
	var ss []series
	for _, sc := range []string{"full", "nochange", "yum"} {
		ss = append(ss, series{toolGoldsync, sc, func(s summary) toolStats { return s.G }})
	}
	for _, sc := range []string{"full", "nochange", "yum"} {
		ss = append(ss, series{toolRsync, sc, func(s summary) toolStats { return s.B }})
	}
	ss = append(ss, series{toolTar, "full", func(s summary) toolStats { return s.F }})
	n := 0
	for i, se := range ss {
		for side, remote := range []bool{false, true} {
			var xys plotter.XYs
			for _, s := range sums {
				if s.Scenario != se.sc || s.Mode != "warm" || !strings.HasPrefix(s.Tree, "syn") {
					continue
				}
				t := se.pick(s)
				v := t.RSSTree
				if remote {
					v = t.RSSRem
				}
				if t.N == 0 || v <= 0 {
					continue
				}
				xys = append(xys, plotter.XY{X: float64(s.Entries), Y: float64(v) / (1 << 20)})
			}
			if len(xys) == 0 {
				continue
			}
			sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return err
			}
			c := palette[i%len(palette)]
			l.Color, pts.Color = c, c
			l.Width = vg.Points(1.5)
			pts.Shape = draw.CircleGlyph{}
			where := "image server"
			if side == 1 {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
				pts.Shape = draw.TriangleGlyph{}
				where = "golden node"
			}
			p.Add(l, pts)
			p.Legend.Add(fmt.Sprintf("%s %s, %s", se.tool, se.sc, where), l, pts)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	p.Add(plotter.NewGrid())
	p.Y.Max *= 8 // headroom for the legend
	return p.Save(8*vg.Inch, 6*vg.Inch, path)
}
