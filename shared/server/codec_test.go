package server

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/descriptorpb"
)

// rawCodec sends pre-encoded bytes (a Go client refuses to encode invalid
// UTF-8, other clients do not) and decodes replies as protos.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T", v)
	}
	return *b, nil
}
func (rawCodec) Unmarshal(data []byte, v any) error { return nil }
func (rawCodec) Name() string                       { return "proto" }

// TestInvalidUTF8 checks that a string field with invalid UTF-8 is
// INVALID_ARGUMENT naming the field, on unary and streaming RPCs, and that
// the server keeps serving.
func TestInvalidUTF8(t *testing.T) {
	r := startServer(t)
	conn := dial(t, r.Addr())
	ctx := context.Background()
	bad := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xffsvc")
	raw := grpc.ForceCodec(rawCodec{})

	var out []byte
	err := conn.Invoke(ctx, "/grpc.health.v1.Health/Check", &bad, &out, raw)
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "request: field service is not valid UTF-8" {
		t.Errorf("unary: got %v, want INVALID_ARGUMENT naming the field", err)
	}

	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/grpc.health.v1.Health/Watch", raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&bad); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	if err := st.RecvMsg(&out); status.Code(err) != codes.InvalidArgument {
		t.Errorf("stream: got %v, want INVALID_ARGUMENT", err)
	}

	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("valid request after: got %v, %v", hr.GetStatus(), err)
	}
	n := 0
	r.codec.bad.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d recorded errors left, want none", n)
	}
}

func TestInvalidUTF8Field(t *testing.T) {
	md := (&descriptorpb.FileDescriptorProto{}).ProtoReflect().Descriptor()
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	msg := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	// FileDescriptorProto: name = 1, message_type = 4 (DescriptorProto: name = 1, field = 2 (FieldDescriptorProto: json_name = 10)).
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{str(1, "ok"), ""},
		{str(1, "\xff"), "name"},
		{append(str(1, "ok"), msg(4, str(1, "b\xc3"))...), "message_type.name"},
		{msg(4, append(str(1, "M"), msg(2, str(10, "\xfe"))...)), "message_type.field.json_name"},
		{protowire.AppendVarint(protowire.AppendTag(nil, 8, protowire.VarintType), 3), ""},
		{[]byte{0xff}, ""},
	} {
		if got := invalidUTF8Field(tc.b, md, 0); got != tc.want {
			t.Errorf("%x: got %q, want %q", tc.b, got, tc.want)
		}
	}
}
