package web

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/internal/certtest"
)

// The web configuration file that docs/security.md shows works as it says:
// TLS from the relative certificate paths, and the login fleet / "change me"
// from its htpasswd hash.
func TestSecurityDocExample(t *testing.T) {
	page, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(page), "<!-- web config example")
	if !ok {
		t.Fatal("docs/security.md has no web config example marker")
	}
	_, example, _ = strings.Cut(example, "```yaml\n")
	example, _, ok = strings.Cut(example, "```")
	if !ok || !strings.Contains(example, "basic_auth_users") {
		t.Fatalf("no yaml block after the marker: %q", example)
	}

	dir := t.TempDir()
	ca := certtest.NewCA(t, "docs CA")
	pair := ca.Server(t, "bridge")
	for src, dst := range map[string]string{pair.CertFile: "tls.crt", pair.KeyFile: "tls.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Addr: "127.0.0.1:0", WebConfigFile: path}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	addr, _ := serve(t, cfg)
	client := tlsClient(t, ca)
	if code, _, _ := request(t, client, "https://"+addr+"/api/status", "", "fleet", "change me"); code != http.StatusOK {
		t.Errorf("fleet / change me: %d, want 200", code)
	}
	if code, _, _ := request(t, client, "https://"+addr+"/api/status", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("no login: %d, want 401", code)
	}
	if code, _, _ := request(t, client, "https://"+addr+"/healthz", "", "", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", code)
	}
}
