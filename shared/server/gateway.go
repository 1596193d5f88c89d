package server

import (
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

func defaultMuxOptions() []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{
		// One JSON codec for every bitnet REST front (see package gateway).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gateway.Marshaler()),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, logging.RequestIDHeader) {
				return logging.RequestIDHeader, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == logging.RequestIDHeader {
				return "", false // the HTTP middleware has set X-Request-Id already
			}
			return runtime.MetadataHeaderPrefix + key, true
		}),
	}
}
