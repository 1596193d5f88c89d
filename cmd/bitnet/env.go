package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
)

// envRow is one setting of "bitnet env --json".
type envRow struct {
	Env      string   `json:"env"`
	Aliases  []string `json:"aliases,omitempty"`
	Flag     string   `json:"flag"`
	Type     string   `json:"type"`
	Value    string   `json:"value"`
	Default  string   `json:"default"`
	Source   string   `json:"source"` // flag, env or default
	Var      string   `json:"source_var,omitempty"`
	Commands []string `json:"commands"`
	Usage    string   `json:"usage"`
	Error    string   `json:"error,omitempty"`
}

func newEnvCmd(env config.Lookup) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "env [--json]",
		Short: "List every setting's environment variable with its current value and source",
		Long: `List every setting: its BITNET_* variable (and the older names also read,
such as CONSUL_HTTP_ADDR and POD_IP), the value the commands would use now,
where that value comes from (env or default), the flag that overrides it and
the commands that take it. An invalid value is reported and makes env fail.`,
		Example: `  bitnet env
  BITNET_THREADS=4 bitnet env
  bitnet env --json | jq '.[] | select(.source != "default")'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rows := envRows(c.Root(), env)
			var bad []string
			for _, r := range rows {
				if r.Error != "" {
					bad = append(bad, r.Error)
				}
			}
			var err error
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(rows)
			} else {
				err = printEnv(c.OutOrStdout(), rows)
			}
			if err != nil {
				return err
			}
			if len(bad) > 0 {
				return errors.New("invalid settings: " + strings.Join(bad, "; "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

// envRows lists config.All() with the commands of root that take each.
func envRows(root *cobra.Command, env config.Lookup) []envRow {
	used := map[string][]string{} // variable -> command paths
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			if vars := config.FlagVars(fl); len(vars) > 0 {
				used[vars[0]] = append(used[vars[0]], strings.TrimPrefix(c.CommandPath(), root.Name()+" "))
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	var rows []envRow
	for _, r := range config.List(env, config.All()...) {
		row := envRow{Env: r.Env, Aliases: r.Aliases, Flag: "--" + r.Flag, Type: r.Type, Value: r.Value,
			Default: r.Default, Source: "default", Commands: slices.Compact(used[r.Env]), Usage: r.Help()}
		switch r.Source.Origin {
		case config.FromEnv:
			row.Source, row.Var = "env", r.Source.Var
		case config.FromFlag:
			row.Source = "flag"
		}
		if r.Err != nil {
			row.Error, row.Source = r.Err.Error(), "invalid"
		}
		rows = append(rows, row)
	}
	return rows
}

func printEnv(w io.Writer, rows []envRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tSOURCE\tFLAG\tCOMMANDS\tDESCRIPTION")
	for _, r := range rows {
		src := r.Source
		if r.Var != "" && r.Var != r.Env {
			src = r.Var
		} else if r.Source == "env" {
			src = "env"
		}
		val := r.Value
		if r.Error != "" {
			val = "(" + r.Error + ")"
		}
		desc := r.Usage
		if len(r.Aliases) > 0 {
			desc += " (also read: " + strings.Join(r.Aliases, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Env, quoteEmpty(val), src, r.Flag, dash(strings.Join(r.Commands, ", ")), desc)
	}
	return tw.Flush()
}

// quoteEmpty shows an empty value as "".
func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
