package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSettingsTable keeps the settings table of docs/settings.md and the
// program's settings equal: every variable the program reads is in the
// table, and the table names no variable the program does not read.
func TestSettingsTable(t *testing.T) {
	page, err := os.ReadFile("../../docs/settings.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(page), "<!-- settings table")
	if !ok {
		t.Fatal("docs/settings.md has no settings table marker")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	inTable := make(map[string]bool)
	for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(table, -1) {
		inTable[m[1]] = true
	}
	known := make(map[string]bool)
	for _, sec := range (&settings{}).sections() {
		for i := range sec.typ.NumField() {
			name := strings.Split(sec.typ.Field(i).Tag.Get("env"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			known[sec.prefix+name] = true
			if !inTable[sec.prefix+name] {
				t.Errorf("docs/settings.md settings table lacks %s", sec.prefix+name)
			}
		}
	}
	for name := range inTable {
		if !known[name] {
			t.Errorf("docs/settings.md settings table names %s, which the program does not read", name)
		}
	}
}

// TestReadmeQuickStartMatchesCI checks that CI runs the README's test
// command (with -race) and that the quick start is the demo and the tests.
func TestReadmeQuickStartMatchesCI(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	_, quick, _ := strings.Cut(string(readme), "## Quick start")
	quick, _, _ = strings.Cut(quick, "```\n\n")
	for _, want := range []string{"go run ./cmd/exlive2mqtt demo", "go test ./..."} {
		if !strings.Contains(quick, want) {
			t.Errorf("quick start lacks %q", want)
		}
	}
	if !strings.Contains(string(ci), "go test -race ./...") {
		t.Error(".ci/run does not run the README's test command with -race")
	}
}
