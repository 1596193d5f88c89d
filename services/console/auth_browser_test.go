package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

// TestBrowserAuth drives the console against `bitnet up --auth` (both
// inference nodes with keys on) with real keys: without a key the console
// asks for one; a bad key gets the 401 message; a read-only key lists the
// models, but moving an alias shows the 403 naming the scope it needs (and
// moves nothing); the admin key (--admin-key) creates a key on the keys
// page, which works at once, and revokes it, after which the mesh refuses it.
func TestBrowserAuth(t *testing.T) {
	bin := findChromium(t)
	// The operator's bootstrap admin key (--admin-key): the second node
	// reads the registry's keys with it (--api-key).
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	admin := tok.String()
	m := startMesh(t, func(up, node *mesh.Config) {
		up.Auth, up.AdminKey = true, admin
		node.Auth, node.APIKey = true, admin
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dialKey := func(key string) *sdk.Client {
		t.Helper()
		c, err := sdk.Dial(ctx, m.grpcAddr, sdk.WithAPIKey(key))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ac := dialKey(admin)
	for range 2 {
		if _, err := ac.Registry().Push(ctx, "tiny", tinyModel, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ac.Registry().SetAlias(ctx, "tiny", "prod", 1); err != nil {
		t.Fatal(err)
	}
	_, reader, err := ac.Keys().Create(ctx, sdk.KeySpec{Name: "viewer", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, bin, m.base)
	// useKey enters key in the console's API key dialog.
	useKey := func(key string) {
		b.t.Helper()
		b.do("open the key dialog", 10*time.Second, chromedp.Click(chromedp.CSS(`#key-button`)))
		b.wait("the key dialog opens", `document.getElementById('key-dialog').open`, 5*time.Second)
		b.do("enter the key", 10*time.Second,
			chromedp.SetValue(chromedp.CSS(`#key-input`), key),
			chromedp.Click(chromedp.CSS(`#key-form button[value="save"]`)))
		b.wait("the key dialog closes", `!document.getElementById('key-dialog').open`, 5*time.Second)
	}
	bannerText := `(document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent)`

	t.Run("no key", func(t *testing.T) {
		b.t = t
		b.do("load the console", 30*time.Second, chromedp.Navigate(m.base+"#/models"))
		b.wait("the console asks for a key", bannerText+`.includes('needs an API key')`, 10*time.Second)
		if got := eval[int](b, `document.querySelectorAll('[data-model]').length`); got != 0 {
			t.Errorf("models listed without a key: got %d, want 0", got)
		}
		b.checkA11y("no key")
		b.shot("auth-no-key.png")
	})

	t.Run("bad key", func(t *testing.T) {
		b.t = t
		useKey("bnk_not-a-key-of-this-mesh")
		b.wait("the 401 message", bannerText+`.includes('was not accepted')`, 10*time.Second)
		b.wait("the page says so too", `(document.querySelector('main .msg') || {}).textContent?.includes('was not accepted')`, 10*time.Second)
		b.shot("auth-bad-key.png")
	})

	t.Run("read key", func(t *testing.T) {
		b.t = t
		useKey(reader)
		b.open("#/models/tiny")
		b.wait("versions of tiny", `document.querySelectorAll('table.versions tbody tr').length === 2`, 15*time.Second)
		if got := eval[string](b, bannerText); got != "" {
			t.Errorf("banner with a valid key: got %q, want none", got)
		}
		// The version's family (issue 12), named as model.FamilyOf does.
		b.wait("the version detail", `document.querySelector('.version-detail dd[data-family]')`, 10*time.Second)
		if got := eval[string](b, `document.querySelector('.version-detail dd[data-family]').textContent`); got != "bitnet" {
			t.Errorf("family of tiny (BitNetForCausalLM): got %q, want bitnet", got)
		}
		b.do("move prod to @2", 10*time.Second,
			chromedp.SetValue(chromedp.CSS(`tr[data-alias="prod"] select`), "2"),
			chromedp.Click(chromedp.CSS(`tr[data-alias="prod"] button`)))
		b.wait("the 403 message", `(document.querySelector('.alias-out .msg') || {}).textContent?.includes('may not do this')`, 10*time.Second)
		msg := eval[string](b, `document.querySelector('.alias-out .msg').textContent`)
		if !strings.Contains(msg, `needs scope "write"`) {
			t.Errorf("403 message: got %q, want it to name the scope write", msg)
		}
		if strings.Contains(msg, admin) || strings.Contains(msg, reader) {
			t.Errorf("403 message shows a key: %q", msg)
		}
		if v, err := ac.Registry().Resolve(ctx, "tiny:prod"); err != nil || v.GetRef().GetVersion() != 1 {
			t.Errorf("registry after the refused move: got %v, %v; want tiny:prod = 1", v.GetRef(), err)
		}
		b.open("#/keys")
		b.wait("the keys page refuses a read key", `(document.querySelector('main .msg') || {}).textContent?.includes('needs scope "admin"')`, 10*time.Second)
		b.shot("auth-read-key.png")
	})

	t.Run("admin key manages keys", func(t *testing.T) {
		b.t = t
		useKey(admin)
		b.open("#/keys")
		b.wait("keys listed", `document.querySelector('tr[data-key="viewer"]')`, 10*time.Second)
		b.do("create a key", 10*time.Second,
			chromedp.SetValue(chromedp.CSS(`#key-name`), "ci-deploy"),
			chromedp.Click(chromedp.CSS(`#key-create`)))
		b.wait("the new key's secret", `(document.getElementById('key-secret') || {}).textContent`, 10*time.Second)
		b.wait("the new key listed", `document.querySelector('tr[data-key="ci-deploy"]')`, 10*time.Second)
		secret := eval[string](b, `document.getElementById('key-secret').textContent`)
		b.shot("keys-admin.png")
		created := dialKey(secret)
		if _, err := created.Registry().List(ctx, ""); err != nil {
			t.Fatalf("the key created on the page: %v", err)
		}
		if _, _, err := created.Keys().Create(ctx, sdk.KeySpec{Name: "escalate", Scopes: []string{"admin"}}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("a read key creating keys: got %v, want PERMISSION_DENIED", err)
		}

		b.do("revoke it", 10*time.Second,
			chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
			chromedp.Click(chromedp.CSS(`tr[data-key="ci-deploy"] button`)))
		b.wait("revoked", `(document.querySelector('main .msg') || {}).textContent?.includes('ci-deploy revoked')`, 10*time.Second)
		keys, err := ac.Keys().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.GetName() == "ci-deploy" {
				t.Errorf("key ci-deploy still listed after its revocation on the page: %v", k)
			}
		}
		if eval[bool](b, `Boolean(document.querySelector('tr[data-key="ci-deploy"]'))`) {
			t.Error("the keys page still lists ci-deploy after revoking it")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := created.Registry().List(ctx, "")
			if status.Code(err) == codes.Unauthenticated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the revoked key after 10 s: got %v, want UNAUTHENTICATED", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("browser: %s", p)
	}
}
