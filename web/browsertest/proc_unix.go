//go:build unix

package browsertest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts Chromium and its helpers into a process group of
// their own, so that killProcessGroup and a timeout reach all of them.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// killProcessGroup ends whatever helper is left once Chromium has exited;
// usually nothing is, and the error is then ESRCH.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
