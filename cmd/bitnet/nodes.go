package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/progress"
)

// newNodesCmd is "bitnet nodes": the inference nodes the router knows,
// with their hardware and load.
func newNodesCmd(env config.Lookup) *cobra.Command {
	var (
		asJSON  bool
		model   string
		require []string
	)
	c := &cobra.Command{
		Use:   "nodes [--model REF] [--require FEATURE]... [--json] [flags]",
		Short: "List inference nodes with their hardware, load and loaded models",
		Long: `List the inference nodes the router knows: address, health, CPU architecture,
kernel path, features, cores, model memory, requests in flight, queue, recent
tokens per second and loaded models.`,
		Example: `  bitnet nodes
  bitnet nodes --require avx512 --json
  bitnet nodes --model opticks@1`,
		Args: noArgs,
	}
	resolve := bindClient(c, env)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the API's ListNodesResponse) instead of a table")
	c.Flags().StringVar(&model, "model", "", "only nodes that can serve this model")
	c.Flags().StringArrayVar(&require, "require", nil, "only nodes with this feature or kernel path (repeatable)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		return listNodes(c.Context(), rf, model, require, asJSON, c.OutOrStdout())
	}
	return c
}

func listNodes(ctx context.Context, rf client, model string, require []string, asJSON bool, stdout io.Writer) error {
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	nodes, err := c.Inference().ListNodes(ctx, model, require...)
	if err != nil {
		return err
	}
	if asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(&inferencev1.ListNodesResponse{Nodes: nodes})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tHEALTHY\tARCH\tKERNEL\tFEATURES\tCORES\tMEMORY\tACTIVE\tQUEUE\tTOK/S\tMEASURED\tLOADED\tPLAN")
	for _, n := range nodes {
		h, l := n.GetHardware(), n.GetLoad()
		var loaded []string
		for _, m := range n.GetLoaded() {
			loaded = append(loaded, m.GetModel().Text())
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%d\t%s\t%d\t%d/%d\t%.1f\t%s\t%s\t%s\n",
			n.GetName(), n.GetAddress(), n.GetHealthy(), dash(h.GetArch()), dash(h.GetKernel()), dash(strings.Join(h.GetFeatures(), ",")),
			h.GetLogicalCores(), memText(n), l.GetActiveRequests(), l.GetQueueDepth(), l.GetQueueCapacity(), l.GetTokensPerSecond(),
			measuredText(h), dash(strings.Join(loaded, ",")), dash(h.GetKernelPlan()))
	}
	return tw.Flush()
}

// memText is "used/budget" of the node's model memory, or the machine's
// memory when the node reports no budget.
func memText(n *inferencev1.Node) string {
	if b := n.GetMemoryBudgetBytes(); b > 0 {
		return progress.FormatBytes(int64(n.GetMemoryUsedBytes())) + "/" + progress.FormatBytes(int64(b))
	}
	return sizeText(n.GetHardware().GetMemoryBytes())
}

// measuredText shows what a node measured at start: read bandwidth and the
// decode/prefill estimates of its kernel plan ("-" when it measured nothing).
func measuredText(h *modelv1.Hardware) string {
	if h.GetReadGbps() == 0 && h.GetDecodeTokS() == 0 {
		return "-"
	}
	return fmt.Sprintf("read %.1fGB/s decode~%.1f prefill~%.0f tok/s", h.GetReadGbps(), h.GetDecodeTokS(), h.GetPrefillTokS())
}
