package auth

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// AuditLoggerName is the name of the audit logger ("audit" in zap's
// "logger" field): operators route its lines apart from access logs.
const AuditLoggerName = "audit"

// resourceFields name, in order, the request (and response) fields that
// say what a call acted on; they never hold secrets.
var resourceFields = []protoreflect.Name{"name", "model", "version", "alias", "job_id", "upload_id", "sha256", "id"}

// resource describes what a request (or its response) names, such as
// "name=tiny version=3" or "header.upload_id=u1"; nested messages are
// searched one level deep.
func resource(msgs ...any) string {
	var parts []string
	for _, m := range msgs {
		pm, ok := m.(proto.Message)
		if !ok || pm == nil {
			continue
		}
		parts = appendResource(parts, pm.ProtoReflect(), "", 1)
	}
	return strings.Join(parts, " ")
}

func appendResource(parts []string, m protoreflect.Message, prefix string, depth int) []string {
	if !m.IsValid() {
		return parts
	}
	fields := m.Descriptor().Fields()
	for _, name := range resourceFields {
		fd := fields.ByName(name)
		if fd == nil || fd.IsList() || fd.IsMap() || !m.Has(fd) {
			continue
		}
		switch fd.Kind() {
		case protoreflect.StringKind, protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Int32Kind, protoreflect.Int64Kind:
			parts = append(parts, fmt.Sprintf("%s%s=%v", prefix, name, m.Get(fd).Interface()))
		}
	}
	if depth == 0 {
		return parts
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && m.Has(fd) {
			parts = appendResource(parts, m.Get(fd).Message(), prefix+string(fd.Name())+".", depth-1)
		}
	}
	return parts
}

// auditCall writes the one audit line of a mutating call: who (key ID or
// certificate name, never the key), what (method, resource), and the
// result code.
func (g *Guard) auditCall(ctx context.Context, p *Principal, method string, req, resp any, err error) {
	if p == nil {
		p = &Principal{Kind: "none", ID: "-"}
	}
	fields := []zap.Field{
		zap.String("principal_kind", string(p.Kind)),
		zap.String("principal", p.ID),
		zap.String("method", method),
		zap.String("resource", resource(req, resp)),
		zap.String("code", errCode(err).String()),
	}
	if id := logging.RequestID(ctx); id != "" {
		fields = append(fields, zap.String("request_id", id))
	}
	if p := peerAddr(ctx); p != "" {
		fields = append(fields, zap.String("peer", p))
	}
	g.audit.Info("audit", fields...)
}

// peerAddr is the caller's address: the transport's, or for calls from
// the in-process REST gateway the HTTP client's, which the gateway appends
// last to x-forwarded-for (earlier entries come from the client and prove
// nothing).
func peerAddr(ctx context.Context) string {
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.Addr == nil {
		return ""
	}
	if ip, ok := pr.AuthInfo.(InProcess); ok && ip.InProcess() {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-forwarded-for"); len(v) > 0 {
			parts := strings.Split(v[len(v)-1], ",")
			return "rest:" + strings.TrimSpace(parts[len(parts)-1])
		}
	}
	return pr.Addr.String()
}
