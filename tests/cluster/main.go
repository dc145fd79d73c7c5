// Command testcluster runs a real kube-apiserver, with etcd embedded, in one
// process on loopback ports, for end-to-end tests and manual experiments.
//
// It writes certificates, an admin kubeconfig and logs to a data directory,
// prints one JSON line on stdout when /readyz is OK, and stops (etcd too)
// on SIGTERM, SIGINT or, unless -exit-on-stdin-eof=false, when stdin
// reaches EOF. Flags after "--" go to kube-apiserver.
//
// "testcluster kustomize DIR" instead renders a kustomization and prints
// the YAML (see kustomize.go); no server is started.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
)

// readyInfo is the line printed on stdout (and written to -ready-file) once
// the API server is ready.
type readyInfo struct {
	Kubeconfig     string  `json:"kubeconfig"`
	Server         string  `json:"server"`
	Port           int     `json:"port"`
	DataDir        string  `json:"data_dir"`
	LogFile        string  `json:"log_file"`
	AuditLog       string  `json:"audit_log"`
	PID            int     `json:"pid"`
	Version        string  `json:"version"`
	StartupSeconds float64 `json:"startup_seconds"`
	// Node is set with -node.
	Node *nodeInfo `json:"node,omitempty"`
}

// activeNode is the running node, stopped also when kube-apiserver exits
// through klog.Fatal (which skips deferred calls).
var activeNode *node

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kustomize" {
		os.Exit(runKustomize(os.Args[2:]))
	}
	if len(os.Args) > 1 {
		if code, ok := runComponent(os.Args[1]); ok {
			os.Exit(code)
		}
	}
	os.Exit(run())
}

func run() int {
	start := time.Now()
	dataDir := flag.String("data-dir", "", "directory for certificates, kubeconfig, etcd data and logs; kept on exit (default: a new temporary directory, removed on exit)")
	port := flag.Int("port", 0, "API server port on 127.0.0.1 (0: any free port)")
	readyFile := flag.String("ready-file", "", "also write the ready JSON to this file")
	watchStdin := flag.Bool("exit-on-stdin-eof", true, "stop when stdin reaches EOF")
	hint := flag.Bool("hint", false, "print KUBECONFIG/kubectl hints for interactive use")
	withNode := flag.Bool("node", false, "also run a node: containerd, a kubelet, kube-controller-manager and kube-scheduler (root; one per machine)")
	imagesDir := flag.String("images", "", "with -node: directory of image tarballs to import (built by images.sh)")
	flag.Parse()

	// Our own messages go to the original stderr; until it is redirected,
	// that is os.Stderr.
	out := os.Stderr
	fail := func(format string, args ...any) int {
		fmt.Fprintf(out, "testcluster: "+format+"\n", args...)
		return 1
	}

	ownDir := *dataDir == ""
	if ownDir {
		d, err := os.MkdirTemp("", "testcluster-")
		if err != nil {
			return fail("create data directory: %v", err)
		}
		*dataDir = d
		defer os.RemoveAll(d)
	} else if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fail("create data directory: %v", err)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return fail("data directory: %v", err)
	}

	logPath := filepath.Join(dir, "apiserver.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail("open log file: %v", err)
	}
	defer logFile.Close()
	orig, err := redirectStderr(logFile)
	if err != nil {
		return fail("%v", err)
	}
	out = orig
	logTail := func() string { return tail(logPath, 30) }

	ctx, stop := stopContext(*watchStdin, out)
	defer stop()

	// kube-apiserver exits through klog.Fatal when a post-start hook fails,
	// which also happens when we are told to stop while it starts. Clean up
	// our data directory either way, and report only unrequested failures.
	klog.OsExit = func(code int) {
		if ctx.Err() != nil {
			code = 0
		} else {
			fmt.Fprintf(out, "testcluster: kube-apiserver failed; last lines of %s:\n%s\n", logPath, logTail())
		}
		if activeNode != nil {
			activeNode.stop()
		}
		if ownDir {
			os.RemoveAll(dir)
		}
		os.Exit(code)
	}

	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return fail("create %s: %v", pkiDir, err)
	}
	p, err := writePKI(pkiDir)
	if err != nil {
		return fail("%v", err)
	}

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return fail("listen on 127.0.0.1:%d: %v", *port, err)
	}
	apiPort := ln.Addr().(*net.TCPAddr).Port
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, p); err != nil {
		return fail("write kubeconfig: %v", err)
	}

	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"), logPath)
	if err != nil {
		return fail("%v\n%s", err, logTail())
	}
	defer etcd.Close()

	audit, auditLog, err := auditArgs(dir)
	if err != nil {
		return fail("write audit policy: %v", err)
	}
	var files *nodeFiles
	authorization := "RBAC"
	if *withNode {
		authorization = nodeAuthorization
		var nodeArgs []string
		if files, nodeArgs, err = prepareNode(dir, p); err != nil {
			return fail("prepare the node: %v", err)
		}
		audit = append(nodeArgs, audit...)
	}
	apiCtx, stopAPI := context.WithCancel(ctx)
	defer stopAPI()
	stopped := make(chan error, 1)
	go func() {
		stopped <- runAPIServer(apiCtx, ln, apiserverArgs(etcdURL, p, authorization, append(audit, flag.Args()...)))
	}()

	if err := waitReady(ctx, server, p, stopped); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(out, "testcluster: stopping before ready: %v\n", context.Cause(ctx))
			return shutdown(ctx, stopAPI, stopped, out)
		}
		return fail("%v\nlast lines of %s:\n%s", err, logPath, logTail())
	}

	var nodeStatus *nodeInfo
	if *withNode {
		say := func(format string, args ...any) { fmt.Fprintf(out, "testcluster: "+format+"\n", args...) }
		n, err := startNode(ctx, files, p, server, kubeconfig, *imagesDir, say)
		if err != nil {
			if ctx.Err() != nil {
				return shutdown(ctx, stopAPI, stopped, out)
			}
			return fail("%v", err)
		}
		activeNode = n
		defer n.stop()
		nodeStatus = &n.info
	}

	info := readyInfo{
		Kubeconfig:     kubeconfig,
		Server:         server,
		Port:           apiPort,
		DataDir:        dir,
		LogFile:        logPath,
		AuditLog:       auditLog,
		PID:            os.Getpid(),
		Version:        version.Get().GitVersion,
		StartupSeconds: time.Since(start).Seconds(),
		Node:           nodeStatus,
	}
	line, _ := json.Marshal(info)
	if *readyFile != "" {
		if err := writeAtomically(*readyFile, append(line, '\n')); err != nil {
			return fail("write ready file: %v", err)
		}
	}
	fmt.Println(string(line))
	if *hint {
		printHint(out, info, ownDir)
	}

	select {
	case err := <-stopped:
		return fail("kube-apiserver stopped: %v\nlast lines of %s:\n%s", err, logPath, logTail())
	case <-ctx.Done():
		fmt.Fprintf(out, "testcluster: stopping (%v)\n", context.Cause(ctx))
		return shutdown(ctx, stopAPI, stopped, out)
	}
}

// shutdown stops the API server; etcd and the data directory are handled
// by run's deferred calls. When our parent is gone (stdin closed) nobody
// waits for in-flight requests, so the API server is not drained: that
// takes about a second, during which we would outlive the parent.
func shutdown(ctx context.Context, stopAPI context.CancelFunc, stopped <-chan error, out *os.File) int {
	stopAPI()
	if errors.Is(context.Cause(ctx), errStdinClosed) {
		return 0
	}
	select {
	case err := <-stopped:
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(out, "testcluster: kube-apiserver shutdown: %v\n", err)
		}
	case <-time.After(15 * time.Second):
		fmt.Fprintln(out, "testcluster: kube-apiserver did not stop within 15s; exiting anyway")
	}
	return 0
}

func printHint(out *os.File, info readyInfo, ownDir bool) {
	fmt.Fprintf(out, "\ntestcluster: Kubernetes %s API server ready at %s (%.1fs)\n\n", info.Version, info.Server, info.StartupSeconds)
	fmt.Fprintf(out, "    export KUBECONFIG=%s\n    kubectl get namespaces\n\n", info.Kubeconfig)
	if info.Node != nil {
		fmt.Fprintf(out, "Node %s (containerd, kubelet), kube-controller-manager and kube-scheduler run;\n", info.Node.Name)
		fmt.Fprintf(out, "images (imagePullPolicy: Never): %s\n", strings.Join(info.Node.Images, " "))
		fmt.Fprintf(out, "default StorageClass %s (host-path provisioner). Node logs: %s\n", info.Node.StorageClass, info.Node.LogDir)
	} else {
		fmt.Fprintf(out, "No controllers, scheduler or kubelet run: pods stay Pending, namespaces get no\n")
		fmt.Fprintf(out, "'default' ServiceAccount (kubectl -n NS create serviceaccount default).\n")
	}
	fmt.Fprintf(out, "Logs: %s\n", info.LogFile)
	if ownDir {
		fmt.Fprintf(out, "Ctrl-C stops it and removes %s.\n\n", info.DataDir)
	} else {
		fmt.Fprintf(out, "Ctrl-C stops it; %s is kept.\n\n", info.DataDir)
	}
}

func writeAtomically(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
