package server

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/test/bufconn"
)

// The REST gateway reaches its own gRPC server through an in-memory
// listener, not the network: no loopback port, no TLS to its own
// certificate (whose names need not include 127.0.0.1), and its calls are
// recognisable. The server's transport credentials let these connections
// through without a handshake and label them with inProcessInfo; the auth
// package then trusts the REST middleware's client-certificate check for
// them instead of asking for a certificate of their own. Only this process
// can dial the listener, so no one can forge the label.

// gatewayBuffer is the in-memory pipe's buffer per direction.
const gatewayBuffer = 1 << 20

// gatewayListener is a bufconn listener whose connections are marked as
// in-process.
type gatewayListener struct {
	*bufconn.Listener
}

func newGatewayListener() *gatewayListener {
	return &gatewayListener{bufconn.Listen(gatewayBuffer)}
}

// gatewayConn marks a connection accepted from the gateway listener.
type gatewayConn struct{ net.Conn }

func (l *gatewayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatewayConn{c}, nil
}

func (l *gatewayListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	return l.DialContext(ctx)
}

// inProcessInfo is the AuthInfo of gateway connections.
type inProcessInfo struct{ credentials.CommonAuthInfo }

func (inProcessInfo) AuthType() string { return "inprocess" }

// InProcess marks the connection as never leaving the process (auth.InProcess).
func (inProcessInfo) InProcess() bool { return true }

// serverCreds wraps the server's transport credentials (TLS or insecure):
// gateway connections skip the handshake, every other one does it.
type serverCreds struct {
	credentials.TransportCredentials
}

func (c serverCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if _, ok := conn.(gatewayConn); ok {
		return conn, inProcessInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c serverCreds) Clone() credentials.TransportCredentials {
	return serverCreds{c.TransportCredentials.Clone()}
}
