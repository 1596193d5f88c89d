// Package openapi embeds the OpenAPI v2 (Swagger) specs generated from the
// bitnet protos, so that servers can serve them: bitnet.swagger.json
// describes every service, bitnet/<service>/v1/<service>.swagger.json one
// each. The specs name fields as the protos do (max_tokens), as the REST
// gateway reads and writes them (package gateway).
package openapi

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
)

// AllName is the file name of the spec that covers every service.
const AllName = "bitnet.swagger.json"

//go:embed bitnet.swagger.json bitnet
var files embed.FS

// FS returns the embedded specs, read-only.
func FS() fs.FS { return files }

// Services returns the names Spec accepts besides "": auth, inference,
// quantizer, registry, trainer.
func Services() []string { return []string{"auth", "inference", "quantizer", "registry", "trainer"} }

// Spec returns the spec of one service (see Services), or of all of them
// when service is "".
func Spec(service string) ([]byte, error) {
	if service == "" {
		return files.ReadFile(AllName)
	}
	if !slices.Contains(Services(), service) {
		return nil, fmt.Errorf("openapi: unknown service %q (have %v)", service, Services())
	}
	return files.ReadFile(fmt.Sprintf("bitnet/%s/v1/%s.swagger.json", service, service))
}

// Handler serves the specs as JSON under their paths in FS: /bitnet.swagger.json,
// /bitnet/registry/v1/registry.swagger.json, ... Mount it with
// http.StripPrefix to serve it below a prefix (e.g. /openapi/).
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
