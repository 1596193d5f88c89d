package server

import (
	"context"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	protov2 "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestCodec is gRPC's proto codec, except that a request whose string
// field holds invalid UTF-8 is answered INVALID_ARGUMENT (as the REST
// gateway answers the same body 400), not INTERNAL: the client sent a bad
// request, the server did not fail.
//
// gRPC turns every codec error into INTERNAL before any interceptor runs,
// so Unmarshal records the error against the message and returns nil, and
// the interceptors that come first in the chain (unary, and RecvMsg of
// streams) answer it before a handler sees the message.
type requestCodec struct {
	base encoding.CodecV2
	bad  sync.Map // message pointer -> the status message, until checked
}

func newRequestCodec() *requestCodec {
	return &requestCodec{base: encoding.GetCodecV2(proto.Name)}
}

func (c *requestCodec) Name() string { return c.base.Name() }

func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil || !strings.Contains(err.Error(), "invalid UTF-8") {
		return err
	}
	msg := "request: a string field is not valid UTF-8"
	if m, ok := v.(protov2.Message); ok {
		if f := invalidUTF8Field(data.Materialize(), m.ProtoReflect().Descriptor(), 0); f != "" {
			msg = "request: field " + f + " is not valid UTF-8"
		}
	}
	c.bad.Store(v, msg)
	return nil
}

// check answers a message that Unmarshal recorded as invalid (and forgets it).
func (c *requestCodec) check(v any) error {
	if msg, ok := c.bad.LoadAndDelete(v); ok {
		return status.Error(codes.InvalidArgument, msg.(string))
	}
	return nil
}

// invalidUTF8Field returns the path (messages.content) of the first string
// field of b, a message of type md, that is not valid UTF-8; "" if none is
// found. depth bounds the recursion into nested messages.
func invalidUTF8Field(b []byte, md protoreflect.MessageDescriptor, depth int) string {
	for len(b) > 0 && depth < 32 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		switch {
		case fd == nil:
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.Valid(v) {
				return string(fd.Name())
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if f := invalidUTF8Field(v, fd.Message(), depth+1); f != "" {
				if fd.IsMap() {
					return string(fd.Name())
				}
				return string(fd.Name()) + "." + f
			}
		}
	}
	return ""
}

func (c *requestCodec) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := c.check(req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (c *requestCodec) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, checkedStream{ServerStream: ss, c: c})
}

// checkedStream answers a received message that did not decode.
type checkedStream struct {
	grpc.ServerStream
	c *requestCodec
}

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.c.check(m)
}
