package browsertest

import (
	"bytes"
	"encoding/base64"
	"os"
)

// SetViewport makes the page's window width×height CSS pixels at one device
// pixel per CSS pixel. mobile emulates a phone: the page's meta viewport
// applies, and there are no scrollbars to take room. Call it before
// Navigate.
func (s *Session) SetViewport(width, height int, mobile bool) {
	s.t.Helper()
	s.call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
	}, nil)
	if mobile {
		s.call("Emulation.setTouchEmulationEnabled", map[string]any{"enabled": true, "maxTouchPoints": 5}, nil)
	}
}

// Screenshot writes a PNG of what the page's window shows to path.
func (s *Session) Screenshot(path string) {
	s.t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	s.call("Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		s.t.Fatalf("browsertest: the screenshot is not a PNG (%v)", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}
