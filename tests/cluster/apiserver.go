package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// apiserverArgs are the kube-apiserver flags for a single-process test
// cluster. Extra flags given after "--" on our command line are appended,
// so they win over these. authorization is --authorization-mode (a list
// flag: given twice, the modes add up).
func apiserverArgs(etcdURL string, p *pki, authorization string, extra []string) []string {
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--advertise-address=127.0.0.1",
		"--bind-address=127.0.0.1",
		"--tls-cert-file=" + p.ServingCertFile,
		"--tls-private-key-file=" + p.ServingKeyFile,
		"--client-ca-file=" + p.CAFile,
		"--authorization-mode=" + authorization,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.SAPubFile,
		"--service-account-signing-key-file=" + p.SAKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// As kubeadm and kind set it: pods may ask for privileged containers.
		"--allow-privileged=true",
		// Nothing here competes for API capacity; skipping APF's bootstrap
		// configuration makes startup faster.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
	return append(args, extra...)
}

// runAPIServer runs kube-apiserver in this process on ln until ctx is done,
// the way cmd/kube-apiserver does, minus its process-wide signal handling
// (we own the process lifecycle).
func runAPIServer(ctx context.Context, ln net.Listener, args []string) error {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("kube-apiserver flags: %w", err)
	}
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port

	registry := s.GenericServerRunOptions.ComponentGlobalsRegistry
	if err := registry.Set(); err != nil {
		return err
	}
	// Loopback clients should not log self-issued warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	featureGate := registry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return err
	}

	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	return app.Run(ctx, completed)
}
