package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chzyer/readline"

	"github.com/tavernhq/tavern/apps/console"
)

type replOptions struct {
	in        io.Reader
	out, errw io.Writer
	history   string // "" keeps none
	json      bool
}

// repl reads commands until EOF, quit or exit. A failed command is
// reported and the REPL goes on; it returns 0, or 1 if its input could not
// be read.
func repl(c *console.Client, o replOptions) int {
	interactive := o.in == os.Stdin && readline.DefaultIsTerminal()
	if o.history != "" {
		// What an operator typed is nobody else's business.
		if f, err := os.OpenFile(o.history, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
			f.Close()
		}
	}
	cfg := &readline.Config{
		Prompt:            c.Target() + "> ",
		HistoryFile:       o.history,
		HistorySearchFold: true,
		AutoComplete:      completer(c),
		InterruptPrompt:   "^C",
		EOFPrompt:         "exit",
		Stdout:            o.out,
		Stderr:            o.errw,
		FuncIsTerminal:    func() bool { return interactive },
	}
	if o.in != os.Stdin {
		cfg.Stdin = io.NopCloser(o.in)
	}
	rl, err := readline.NewEx(cfg)
	if err != nil {
		fmt.Fprintf(o.errw, "%s: %v\n", prog, err)
		return 1
	}
	defer rl.Close()
	if interactive {
		fmt.Fprintf(o.out, "attached to %s as %s; help lists the commands, quit leaves\n", c.Target(), c.Name())
	}
	for {
		line, err := rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) {
			continue
		}
		if err != nil { // io.EOF
			return 0
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		command, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		args := strings.Fields(rest)
		switch command {
		case "help", "?":
			writeHelp(o.out)
			fmt.Fprintf(o.out, "  %-18s %s\n  %-18s %s\n", "help", "this list", "quit", "leave the console (also exit, Ctrl-D)")
			continue
		case "quit", "exit":
			return 0
		case "notice":
			// The text as typed, spaces included.
			if rest != "" {
				args = []string{rest}
			}
		case "drain":
			if interactive && !confirm(rl, fmt.Sprintf("drain %s: close every client and stop the node? [y/N] ", c.Target())) {
				fmt.Fprintln(o.out, "not drained")
				continue
			}
		}
		if err := do(c, command, args, o.out, o.json); err != nil {
			fmt.Fprintf(o.errw, "error: %v\n", err)
		}
	}
}

func confirm(rl *readline.Instance, prompt string) bool {
	old := rl.Config.Prompt
	rl.SetPrompt(prompt)
	defer rl.SetPrompt(old)
	answer, err := rl.Readline()
	if err != nil {
		return false
	}
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

// completer completes command names, setting names and values, and the
// ids of the node's active boards.
func completer(c *console.Client) readline.AutoCompleter {
	boards := func(string) []string {
		v, err := c.Do("boards", nil)
		if err != nil {
			return nil
		}
		list, _ := console.Plain(v).([]any)
		var ids []string
		for _, b := range list {
			if m, ok := b.(map[string]any); ok {
				if id, ok := m["id"].(string); ok {
					ids = append(ids, id)
				}
			}
		}
		return ids
	}
	var items []readline.PrefixCompleterInterface
	for _, r := range console.Requests {
		switch r.Command {
		case "board", "kill":
			items = append(items, readline.PcItem(r.Command, readline.PcItemDynamic(boards)))
		case "set":
			items = append(items, readline.PcItem("set",
				readline.PcItem("log_level", readline.PcItem("debug"), readline.PcItem("info"), readline.PcItem("warn"), readline.PcItem("error")),
				readline.PcItem("ops_per_sec"),
				readline.PcItem("ops_burst")))
		default:
			items = append(items, readline.PcItem(r.Command))
		}
	}
	items = append(items, readline.PcItem("help"), readline.PcItem("quit"), readline.PcItem("exit"))
	return readline.NewPrefixCompleter(items...)
}
