// Package docstest holds the test that keeps the repository's documentation
// whole: every relative link in a Markdown file, #anchors included, leads to
// a file and a heading that exist, and every docs page that a comment, a
// test or a configuration file names is there. It has no code of its own.
package docstest
