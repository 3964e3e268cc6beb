package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Column and key orders of the replies, for text output; keys not listed
// follow in alphabetical order.
var orders = map[string][]string{
	"info":    {"node", "version", "uptime_s", "nodes", "boards", "clients", "dsn_kind", "log_level", "ops_per_sec", "ops_burst", "draining"},
	"nodes":   {"node", "live", "self", "connected"},
	"boards":  {"id", "seq", "pending", "members", "users", "entities", "epoch", "loaded"},
	"board":   {"id", "seq", "pending", "members", "users", "entities", "epoch", "loaded"},
	"clients": {"session", "user", "remote", "boards", "connected_at", "connected_s"},
}

// render prints a reply (console.Plain's values) as text fit for scripts:
// one "key value" line per field of a map, one row per element of a list
// of maps under a header of column names, and a sentence for the replies
// that change something.
func render(w io.Writer, command string, args []string, v any) {
	switch command {
	case "kill":
		fmt.Fprintf(w, "ok: board %s killed; its supervisor restarts it\n", strings.Join(args, " "))
		return
	case "notice":
		if m, ok := v.(map[string]any); ok {
			fmt.Fprintf(w, "ok: sent to %s\n", cell(m["nodes"]))
			return
		}
	case "set":
		if m, ok := v.(map[string]any); ok {
			fmt.Fprintf(w, "ok: %s %s -> %s\n", cell(m["key"]), cell(m["old"]), cell(m["new"]))
			return
		}
	case "drain":
		if m, ok := v.(map[string]any); ok {
			fmt.Fprintf(w, "ok: draining: %s boards handed off, %s clients closed with 1012; the node stops when empty\n",
				cell(m["boards"]), cell(m["clients"]))
			return
		}
	}
	switch x := v.(type) {
	case nil:
		fmt.Fprintln(w, "ok")
	case map[string]any:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, k := range keys(x, orders[command]) {
			val := cell(x[k])
			if k == "uptime_s" {
				if n, ok := x[k].(int64); ok {
					val = fmt.Sprintf("%d (%s)", n, time.Duration(n)*time.Second)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\n", k, val)
		}
		tw.Flush()
	case []any:
		rows := make([]map[string]any, 0, len(x))
		all := map[string]any{}
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				fmt.Fprintln(w, cell(e))
				continue
			}
			rows = append(rows, m)
			for k := range m {
				all[k] = nil
			}
		}
		if len(rows) == 0 && len(x) > 0 {
			return
		}
		cols := orders[command]
		if len(rows) > 0 {
			cols = keys(all, cols)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
		for _, m := range rows {
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = cell(m[c])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		tw.Flush()
	default:
		fmt.Fprintln(w, cell(v))
	}
}

// keys returns m's keys: those of order first (when present), then the
// rest sorted.
func keys(m map[string]any, order []string) []string {
	var out []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// cell renders one value on one line: lists comma-separated ("-" when
// empty), maps as k=v.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []any:
		if len(x) == 0 {
			return "-"
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		parts := make([]string, 0, len(x))
		for _, k := range keys(x, nil) {
			parts = append(parts, k+"="+cell(x[k]))
		}
		return strings.Join(parts, " ")
	case float64:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
