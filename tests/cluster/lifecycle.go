package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// errStdinClosed is the stop cause when our parent has gone away.
var errStdinClosed = errors.New("stdin closed")

// stopContext is cancelled on SIGTERM/SIGINT and, if watchStdin, when stdin
// reaches EOF: a parent that dies, however it dies, closes our stdin, so we
// never outlive it. A second signal exits at once.
//
// PR_SET_PDEATHSIG is deliberately not used: it fires when the *thread* that
// forked us exits, and test harnesses start us from short-lived threads.
func stopContext(watchStdin bool, log io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-signals
		cancel(fmt.Errorf("received %v", sig))
		sig = <-signals
		fmt.Fprintf(log, "testcluster: received %v again, exiting now\n", sig)
		os.Exit(1)
	}()
	if watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel(errStdinClosed)
		}()
	}
	return ctx, func() { cancel(context.Canceled) }
}

// redirectStderr points file descriptor 2 at logFile, so kube-apiserver's
// and etcd's logs (and Go runtime crashes) land there, and returns a writer
// to the original stderr for our own few messages.
func redirectStderr(logFile *os.File) (*os.File, error) {
	orig, err := unix.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("dup stderr: %w", err)
	}
	unix.CloseOnExec(orig)
	if err := unix.Dup2(int(logFile.Fd()), 2); err != nil {
		return nil, fmt.Errorf("redirect stderr to %s: %w", logFile.Name(), err)
	}
	return os.NewFile(uintptr(orig), "stderr"), nil
}
