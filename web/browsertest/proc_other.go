//go:build !unix

package browsertest

import "os/exec"

// setProcessGroup does nothing where process groups do not exist; WaitDelay
// still bounds the run.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup does nothing where process groups do not exist.
func killProcessGroup(*exec.Cmd) {}
