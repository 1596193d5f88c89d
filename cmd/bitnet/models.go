package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/progress"
)

// modelRow is one line of "bitnet models" (and one object of --json).
type modelRow struct {
	Name           string            `json:"name"`
	LatestVersion  uint32            `json:"latest_version"`
	Versions       uint32            `json:"version_count,omitempty"`
	Aliases        map[string]uint32 `json:"aliases,omitempty"`
	Family         string            `json:"family,omitempty"` // docs/families.md
	Format         string            `json:"format,omitempty"`
	QuantType      string            `json:"quant_type,omitempty"`
	ParameterCount uint64            `json:"parameter_count,omitempty"`
	SizeBytes      uint64            `json:"size_bytes,omitempty"`
	UpdateTime     *time.Time        `json:"update_time,omitempty"`
	LoadedOn       []string          `json:"loaded_on,omitempty"` // "NODE (NAME@N)"
}

// newModelsCmd is "bitnet models": the registry's models with their latest
// version's format and size, and where inference nodes have them loaded
// (when the endpoint serves the inference API).
func newModelsCmd(env config.Lookup) *cobra.Command {
	var (
		asJSON bool
		prefix string
	)
	c := &cobra.Command{
		Use:   "models [--prefix P] [--json] [flags]",
		Short: "List the registry's models, their latest versions and where they are loaded",
		Long: `List the registry's models with their latest version's format, quant type,
size and aliases, and the inference nodes that have them loaded. Against a
router or inference node without the registry API, list what it can serve.`,
		Example: `  bitnet models
  bitnet models --prefix opticks --json
  bitnet models --remote mesh.example:50051`,
		Args: noArgs,
	}
	resolve := bindClient(c, env)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	c.Flags().StringVar(&prefix, "prefix", "", "only models whose name starts with this")
	c.RunE = func(c *cobra.Command, _ []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		return listModels(c.Context(), rf, prefix, asJSON, c.OutOrStdout())
	}
	return c
}

func listModels(ctx context.Context, rf client, prefix string, asJSON bool, stdout io.Writer) error {
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	ms, err := c.Registry().List(ctx, prefix)
	if status.Code(err) == codes.Unimplemented {
		// A router or inference node alone: list what it can serve.
		rows, err := servableRows(ctx, c, prefix)
		if err != nil {
			return err
		}
		return printModels(stdout, rows, asJSON)
	}
	if err != nil {
		return err
	}
	rows := make([]modelRow, 0, len(ms))
	byName := map[string]int{}
	for _, m := range ms {
		row := modelRow{Name: m.GetName(), LatestVersion: m.GetLatestVersion(), Versions: m.GetVersionCount(),
			Aliases: m.GetAliases()}
		if m.GetUpdateTime() != nil {
			ut := m.GetUpdateTime().AsTime()
			row.UpdateTime = &ut
		}
		if m.GetLatestVersion() > 0 {
			_, latest, err := c.Registry().Get(ctx, m.GetName())
			switch {
			case status.Code(err) == codes.NotFound: // deleted meanwhile
				continue
			case err != nil:
				return err
			}
			row.Family = string(model.FamilyOf(latest.GetArchitecture()))
			row.Format = enumName(latest.GetFormat().String(), "MODEL_FORMAT_")
			row.QuantType = enumName(latest.GetQuantType().String(), "QUANT_TYPE_")
			row.ParameterCount, row.SizeBytes = latest.GetParameterCount(), latest.GetSizeBytes()
		}
		byName[row.Name] = len(rows)
		rows = append(rows, row)
	}
	// Loaded models come from the inference API; a registry alone has none.
	if served, err := c.Inference().ListModels(ctx, prefix); err == nil {
		for _, s := range served {
			i, ok := byName[s.GetName()]
			if !ok {
				continue
			}
			for _, l := range s.GetLoaded() {
				rows[i].LoadedOn = append(rows[i].LoadedOn, fmt.Sprintf("%s (%s)", l.GetNode(), l.GetModel().Text()))
			}
		}
	}
	return printModels(stdout, rows, asJSON)
}

// servableRows lists models through the inference API.
func servableRows(ctx context.Context, c *sdk.Client, prefix string) ([]modelRow, error) {
	served, err := c.Inference().ListModels(ctx, prefix)
	if err != nil {
		return nil, err
	}
	rows := make([]modelRow, 0, len(served))
	for _, s := range served {
		r := modelRow{Name: s.GetName(), LatestVersion: s.GetLatestVersion(), Aliases: s.GetAliases(),
			Format:    enumName(s.GetFormat().String(), "MODEL_FORMAT_"),
			QuantType: enumName(s.GetQuantType().String(), "QUANT_TYPE_"), ParameterCount: s.GetParameterCount(), SizeBytes: s.GetSizeBytes()}
		for _, l := range s.GetLoaded() {
			r.LoadedOn = append(r.LoadedOn, fmt.Sprintf("%s (%s)", l.GetNode(), l.GetModel().Text()))
			if r.Family == "" {
				r.Family = l.GetFamily()
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func printModels(stdout io.Writer, rows []modelRow, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLATEST\tVERSIONS\tALIASES\tFAMILY\tFORMAT\tQUANT\tPARAMS\tSIZE\tLOADED ON")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, latestText(r), r.Versions, aliasText(r.Aliases),
			dash(r.Family), dash(strings.ToLower(r.Format)), dash(r.QuantType), paramText(r.ParameterCount), sizeText(r.SizeBytes), dash(strings.Join(r.LoadedOn, ", ")))
	}
	return tw.Flush()
}

func enumName(s, prefix string) string {
	s = strings.TrimPrefix(s, prefix)
	if s == "UNSPECIFIED" {
		return ""
	}
	return s
}

func latestText(r modelRow) string {
	if r.LatestVersion == 0 {
		return "-"
	}
	return fmt.Sprintf("%s@%d", r.Name, r.LatestVersion)
}

func aliasText(a map[string]uint32) string {
	parts := make([]string, 0, len(a))
	for k, v := range a {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return dash(strings.Join(parts, ","))
}

func paramText(n uint64) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func sizeText(n uint64) string {
	if n == 0 {
		return "-"
	}
	return progress.FormatBytes(int64(n))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
