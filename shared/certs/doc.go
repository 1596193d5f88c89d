// Package certs sets up TLS for the mesh: server and client tls.Configs
// from PEM files (Files), certificates reloaded from disk when they change
// (Reloader), and a throwaway CA with server and client certificates for
// development and tests (NewCA, WriteDev: `bitnet certs dev`).
//
// Conventions: one mesh CA signs every service's certificate; a service's
// certificate carries both the server-auth and client-auth usages, because
// a service serves with it and presents it to the peers it calls (mTLS).
// With a client CA, servers verify client certificates when given
// (tls.VerifyClientCertIfGiven): a certificate from another CA fails the
// handshake, and the auth package refuses calls without one except health
// checks. Services reach each other by IP, so peers verify certificates
// under a fixed name (Files.ServerName, --tls-server-name) rather than the
// address they dial, as Consul verifies server.<dc>.<domain>.
package certs
