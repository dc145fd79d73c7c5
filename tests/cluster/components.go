package main

import (
	"context"
	"io"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as the upstream commands register them
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// components are the node's Kubernetes programs, linked into this binary
// and run as child processes of it ("testcluster kubelet ARGS", ...): one
// link instead of three (they share most packages), and each still in its
// own process with its own flags, logs and signal handling.
var components = map[string]func() int{
	"kubelet": func() int {
		return cli.Run(kubelet.NewKubeletCommand(context.Background()))
	},
	"controller-manager": func() int {
		return cli.Run(kcm.NewControllerManagerCommand())
	},
	"scheduler": func() int {
		return cli.Run(scheduler.NewSchedulerCommand())
	},
}

// runComponent runs the named component with the remaining arguments. It
// exits when its stdin reaches EOF: testcluster holds the other end, so a
// component never outlives it, however it stops.
func runComponent(name string) (int, bool) {
	run, ok := components[name]
	if !ok {
		return 0, false
	}
	os.Args = append([]string{"testcluster-" + name}, os.Args[2:]...)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return run(), true
}
