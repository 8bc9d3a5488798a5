package fixture

// See docs/guide.md and docs/guide.md#quick-start, both there.
// See docs/absent.md, which is not.
// See docs/guide.md#not-there, and a/docs/x.md and ../docs/y.md, which are other files.
