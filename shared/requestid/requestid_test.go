package requestid

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestValid(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"", false},
		{"has space", false},
		{"tab\t", false},
		{"é", false},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
	}
	for _, tt := range tests {
		if got := Valid(tt.id); got != tt.want {
			t.Errorf("Valid(%q): got %v, want %v", tt.id, got, tt.want)
		}
	}
	if id := New(); !Valid(id) || len(id) != 32 {
		t.Errorf("New: got %q, want 32 valid hex characters", id)
	}
	if got := OrNew("bad id"); got == "bad id" || !Valid(got) {
		t.Errorf("OrNew(invalid): got %q, want a fresh valid ID", got)
	}
}

func TestMetadataKeyIsHeader(t *testing.T) {
	ctx := Outgoing(context.Background(), "id-1")
	ctx = Outgoing(ctx, "id-2") // kept: one is there
	md, _ := metadata.FromOutgoingContext(ctx)
	if got := md.Get(Header); len(got) != 1 || got[0] != "id-1" {
		t.Errorf("outgoing %s: got %v, want [id-1]", Header, got)
	}
	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-request-id", "id-3"))
	if got := FromIncoming(in); got != "id-3" {
		t.Errorf("FromIncoming: got %q, want id-3", got)
	}
	if got := From(With(context.Background(), "id-4")); got != "id-4" {
		t.Errorf("From: got %q, want id-4", got)
	}
}
