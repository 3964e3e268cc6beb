// Command tavern-console attaches to a running Tavern node: it reads the
// TARGET node's sys.config for its name, cookie and EPMD port, starts a
// node of its own (console-<random hex>@<target host>) with that cookie,
// connects, and runs one command or a REPL.
//
//	tavern-console -config rel/sys.config            # REPL
//	tavern-console -config rel/sys.config boards     # one command, then exit
//	tavern-console -config rel/sys.config -json info # the same, as JSON
//
// Exit codes: 0 success, 1 failure (unreachable node, refused cookie, an
// {error, Reason} reply), 2 a bad command line or configuration. The
// cookie never appears in the output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tavernhq/tavern/apps/console"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const prog = "tavern-console"

func usage(fs *flag.FlagSet, w io.Writer) func() {
	return func() {
		fmt.Fprintf(w, "usage: %s -config PATH [flags] [COMMAND [ARGS...]]\n\n", prog)
		fmt.Fprintf(w, "Attaches to the node that PATH (its sys.config) describes. Without a\n")
		fmt.Fprintf(w, "command it opens a REPL; with one it runs it and exits.\n\nCommands:\n")
		writeHelp(w)
		fmt.Fprintf(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
}

func writeHelp(w io.Writer) {
	for _, r := range console.Requests {
		fmt.Fprintf(w, "  %-18s %s\n", r.Usage(), r.Help)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "./sys.config", "the TARGET node's sys.config")
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to try to reach the node")
	callTimeout := fs.Duration("call-timeout", 10*time.Second, "how long to wait for each reply")
	history := fs.String("history", defaultHistory(), "the REPL's history file (\"\": none)")
	verbose := fs.Bool("v", false, "show Ergo's warnings on stderr")
	fs.Usage = usage(fs, stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Ergo reports connection trouble through the standard logger; the
	// console explains failures itself.
	if *verbose {
		log.SetOutput(stderr)
	} else {
		log.SetOutput(io.Discard)
	}

	cmd := fs.Args()
	if len(cmd) > 0 {
		if cmd[0] == "help" {
			writeHelp(stdout)
			return 0
		}
		if _, err := console.Build(cmd[0], cmd[1:]); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 2
		}
	}
	cfg, err := sysconfig.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	c, err := console.Dial(context.Background(), cfg, console.DialOptions{Timeout: *timeout, CallTimeout: *callTimeout})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	defer c.Close()

	if len(cmd) == 0 {
		return repl(c, replOptions{in: stdin, out: stdout, errw: stderr, history: *history, json: *asJSON})
	}
	if err := do(c, cmd[0], cmd[1:], stdout, *asJSON); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	return 0
}

// do runs one command and prints its reply.
func do(c *console.Client, command string, args []string, w io.Writer, asJSON bool) error {
	v, err := c.Do(command, args)
	if err != nil {
		if asJSON {
			_ = writeJSON(w, map[string]any{"error": explain(c, command, args, err).Error()})
		}
		return explain(c, command, args, err)
	}
	p := console.Plain(v)
	if asJSON {
		if v == nil {
			p = "ok"
		}
		return writeJSON(w, p)
	}
	render(w, command, args, p)
	return nil
}

// explain turns the reasons a program matches on into sentences.
func explain(c *console.Client, command string, args []string, err error) error {
	var re *console.ReplyError
	if !errors.As(err, &re) {
		return err
	}
	switch re.Reason {
	case "not_active":
		return fmt.Errorf("board %s is not active on %s", strings.Join(args, " "), c.Target())
	case "unknown_request":
		return fmt.Errorf("%s does not know the request %q (is it an older release?)", c.Target(), command)
	}
	return err
}

func defaultHistory() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".tavern_console_history")
}
