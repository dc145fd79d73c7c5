package main

// With -node, a real node runs next to the API server: containerd and runc
// (Debian packages) with the test images imported, and a kubelet,
// kube-controller-manager and kube-scheduler (this binary, see
// components.go), each a child process with its state in the data
// directory. The settings below were each found by a failure on a cgroup v1
// VM without systemd; see README.md.

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	criremote "k8s.io/cri-client/pkg"
)

const (
	// nodeTag names what belongs to a test node on this machine: the
	// cgroup parent of its pods, the containerd socket (found in the
	// command line of containerd's shims) and the lock file.
	nodeTag = "nvtestnode"
	// bridgeName is the CNI bridge; pods get an address on it and no route.
	bridgeName = "nvtest0"
	// podSubnet is the bridge's address range.
	podSubnet = "10.251.0.0/24"
	// storageClassName is the default StorageClass, provisioned by
	// kube-controller-manager's host-path provisioner.
	storageClassName = "hostpath"
	// hostPathProvisionerDir is where that provisioner creates volumes
	// (fixed in kube-controller-manager).
	hostPathProvisionerDir = "/tmp/hostpath_pv"
	nodeReadyTimeout       = 90 * time.Second
)

// nodeInfo is added to the ready line when a node runs.
type nodeInfo struct {
	Name         string   `json:"name"`
	Images       []string `json:"images"`
	ImagesDir    string   `json:"images_dir"`
	LogDir       string   `json:"log_dir"`
	StorageClass string   `json:"storage_class"`
	StartSeconds float64  `json:"start_seconds"`
}

// nodeFiles are written before the API server starts: it needs the client
// certificate it presents to the kubelet.
type nodeFiles struct {
	dir                              string
	kubeletClientCert, kubeletClient string
}

// nodeAuthorization is the API server's --authorization-mode with a node:
// the kubelet registers as system:node:<name>, and the Node authorizer and
// NodeRestriction limit it to its own pods, as in real clusters.
const nodeAuthorization = "Node,RBAC"

// prepareNode writes the node's certificates and returns the API server
// flags the node needs besides nodeAuthorization.
func prepareNode(dataDir string, p *pki) (*nodeFiles, []string, error) {
	dir := filepath.Join(dataDir, "node")
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		return nil, nil, err
	}
	f := &nodeFiles{dir: dir}
	cert, err := issue(p.ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("generate the API server's kubelet client certificate: %w", err)
	}
	f.kubeletClientCert = filepath.Join(dir, "pki", "apiserver-kubelet-client.crt")
	f.kubeletClient = filepath.Join(dir, "pki", "apiserver-kubelet-client.key")
	if err := os.WriteFile(f.kubeletClientCert, cert.certPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(f.kubeletClient, cert.keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	return f, []string{
		"--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + f.kubeletClientCert,
		"--kubelet-client-key=" + f.kubeletClient,
		// The kubelet listens on 127.0.0.1 only; the node's host name
		// resolves there (checked by nodeName). The kubelet refuses a
		// loopback InternalIP, so the host name is the way.
		"--kubelet-preferred-address-types=Hostname",
	}, nil
}

// child is a node process. Its thread is locked, so that PDEATHSIG (sent
// when the thread that started the child ends) fires only when this whole
// process ends: a node process never outlives testcluster.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
	log   string
}

func startChild(name, logPath, path string, args ...string) (*child, error) {
	c := &child{name: name, done: make(chan error, 1), log: logPath}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			started <- err
			return
		}
		defer logFile.Close()
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// Own process group: a Ctrl-C for testcluster does not reach the
		// node directly; it is stopped in order.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			started <- err
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		c.cmd, c.stdin = cmd, stdin
		started <- nil
		c.done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return c, nil
}

// stop asks the child to end (SIGTERM, stdin closed) and kills it after
// grace.
func (c *child) stop(grace time.Duration) {
	if c == nil || c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// exited reports whether the child has ended, with its error.
func (c *child) exited() (bool, error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
		return false, nil
	}
}

type node struct {
	files                           *nodeFiles
	lock                            *os.File
	containerd, kubelet, kcm, sched *child
	socket                          string
	info                            nodeInfo
	// provisioned are the host-path provisioner's directories from before
	// this node: those made later are this node's and removed on stop
	// (the tests end before the controller deletes their volumes).
	provisioned map[string]bool
}

// requiredTools are the Debian packages' programs the node runs.
var requiredTools = map[string]string{
	"containerd":              "containerd",
	"containerd-shim-runc-v2": "containerd",
	"ctr":                     "containerd",
	"runc":                    "runc",
	"/usr/lib/cni/bridge":     "containernetworking-plugins",
	"/usr/lib/cni/host-local": "containernetworking-plugins",
	"/usr/lib/cni/loopback":   "containernetworking-plugins",
	"iptables":                "iptables",
}

// nodeName is the Node's name: the kubelet names it after the host, and
// the API server reaches the kubelet through that name, so it must resolve
// to a loopback address (the kubelet listens only there).
func nodeName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host name: %w", err)
	}
	host = strings.ToLower(host)
	addrs, err := net.LookupHost(host)
	if err != nil {
		return "", fmt.Errorf("the host name %q does not resolve (%v): add '127.0.0.1 %s' to /etc/hosts", host, err, host)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.IsLoopback() {
			return host, nil
		}
	}
	return "", fmt.Errorf("the host name %q resolves to %v, not to a loopback address; the test kubelet listens on 127.0.0.1 only: add '127.0.0.1 %s' to /etc/hosts", host, addrs, host)
}

func checkNodeTools() error {
	var missing []string
	for tool, pkg := range requiredTools {
		if strings.HasPrefix(tool, "/") {
			if _, err := os.Stat(tool); err != nil {
				missing = append(missing, pkg)
			}
		} else if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("the test node needs the Debian packages %s: run 'make node-deps' as root (tests/cluster/install-node-deps.sh)", strings.Join(unique(missing), ", "))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the test node (kubelet, containerd) must run as root; it mounts volumes and creates cgroups")
	}
	return nil
}

func unique(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// lockNode takes the machine-wide node lock: the kubelet manages the
// machine's cgroups, bridge and mounts, so one test node runs at a time.
// Another one is waited for.
func lockNode(ctx context.Context, say func(string, ...any)) (*os.File, error) {
	path := filepath.Join(os.TempDir(), "notebook-volumes-"+nodeTag+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the node lock %s: %w", path, err)
	}
	waiting := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != unix.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waiting {
			say("another test node runs on this machine; waiting for it to stop (lock %s)", path)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startNode brings the node up next to a ready API server and waits until
// the Node is Ready and the controllers work.
func startNode(ctx context.Context, f *nodeFiles, p *pki, server, adminKubeconfig, imagesDir string, say func(string, ...any)) (*node, error) {
	start := time.Now()
	if err := checkNodeTools(); err != nil {
		return nil, err
	}
	images, err := filepath.Glob(filepath.Join(imagesDir, "*.tar"))
	if err != nil || len(images) == 0 {
		return nil, fmt.Errorf("no image tarballs in %q: build them with tests/cluster/images.sh", imagesDir)
	}
	lock, err := lockNode(ctx, say)
	if err != nil {
		return nil, err
	}
	name, err := nodeName()
	if err != nil {
		lock.Close()
		return nil, err
	}
	n := &node{files: f, lock: lock, provisioned: listDir(hostPathProvisionerDir), info: nodeInfo{Name: name, ImagesDir: imagesDir, LogDir: f.dir, StorageClass: storageClassName}}
	fail := func(err error) (*node, error) {
		n.stop()
		return nil, err
	}
	// A test node killed without cleaning up (SIGKILL) may have left pods.
	cleanNodeLeftovers(f.dir)

	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	for _, d := range []string{"containerd/root", "containerd/state", "cni/net.d", "cni/ipam", "kubelet/root", "kubelet/pki", "kubelet/plugins", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(f.dir, d), 0o700); err != nil {
			return fail(err)
		}
	}

	// containerd, with its own socket, root and state.
	n.socket = filepath.Join(f.dir, "containerd", nodeTag+"-containerd.sock")
	sandbox := "notebook-volumes.test/pause:1"
	if err := os.WriteFile(filepath.Join(f.dir, "containerd", nodeTag+"-config.toml"), []byte(containerdConfig(f.dir, n.socket, sandbox)), 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "cni", "net.d", "10-"+nodeTag+".conflist"), []byte(cniConfig(f.dir)), 0o600); err != nil {
		return fail(err)
	}
	n.containerd, err = startChild("containerd", filepath.Join(f.dir, "containerd.log"), "containerd", "--config", filepath.Join(f.dir, "containerd", nodeTag+"-config.toml"))
	if err != nil {
		return fail(err)
	}
	if err := waitFor(ctx, 20*time.Second, n.containerd, func() bool {
		return exec.Command("ctr", "--address", n.socket, "version").Run() == nil
	}); err != nil {
		return fail(fmt.Errorf("containerd did not start: %w\n%s", err, tail(n.containerd.log, 20)))
	}
	for _, image := range images {
		out, err := exec.Command("ctr", "--address", n.socket, "-n", "k8s.io", "images", "import", image).CombinedOutput()
		if err != nil {
			return fail(fmt.Errorf("import %s into containerd: %v: %s", image, err, out))
		}
	}
	if names, err := os.ReadFile(filepath.Join(imagesDir, "images.txt")); err == nil {
		n.info.Images = strings.Fields(string(names))
	}

	// Kubeconfigs of the node and the controllers, each with its own user.
	kubeletKubeconfig, err := clientKubeconfig(f.dir, "kubelet", server, p, "system:node:"+name, "system:nodes")
	if err != nil {
		return fail(err)
	}
	kcmKubeconfig, err := clientKubeconfig(f.dir, "controller-manager", server, p, "system:kube-controller-manager")
	if err != nil {
		return fail(err)
	}
	schedKubeconfig, err := clientKubeconfig(f.dir, "scheduler", server, p, "system:kube-scheduler")
	if err != nil {
		return fail(err)
	}

	if err := prepareCgroupParent(); err != nil {
		return fail(err)
	}
	kubeletPort, err := freePort()
	if err != nil {
		return fail(err)
	}
	kubeletConfig := filepath.Join(f.dir, "kubelet", "config.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(kubeletConfiguration(f.dir, p.CAFile, n.socket, kubeletPort)), 0o600); err != nil {
		return fail(err)
	}
	n.kubelet, err = startChild("kubelet", filepath.Join(f.dir, "kubelet.log"), self, "kubelet",
		"--config="+kubeletConfig,
		"--kubeconfig="+kubeletKubeconfig,
		"--root-dir="+filepath.Join(f.dir, "kubelet", "root"),
		"--cert-dir="+filepath.Join(f.dir, "kubelet", "pki"),
		"--v=1",
	)
	if err != nil {
		return fail(err)
	}
	n.kcm, err = startChild("kube-controller-manager", filepath.Join(f.dir, "controller-manager.log"), self, "controller-manager",
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-kubeconfig="+kcmKubeconfig,
		"--authorization-kubeconfig="+kcmKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p.SAKeyFile,
		"--root-ca-file="+p.CAFile,
		"--enable-hostpath-provisioner=true",
		"--controllers=*",
		"--v=1",
	)
	if err != nil {
		return fail(err)
	}
	n.sched, err = startChild("kube-scheduler", filepath.Join(f.dir, "scheduler.log"), self, "scheduler",
		"--kubeconfig="+schedKubeconfig,
		"--authentication-kubeconfig="+schedKubeconfig,
		"--authorization-kubeconfig="+schedKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		"--v=1",
	)
	if err != nil {
		return fail(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig)
	if err != nil {
		return fail(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	if err := createStorageClass(ctx, client); err != nil {
		return fail(err)
	}
	// Ready: the Node reports Ready, and the controllers have given the
	// default namespace its ServiceAccount and root CA ConfigMap.
	var last string
	err = waitFor(ctx, nodeReadyTimeout, nil, func() bool {
		for _, c := range []*child{n.kubelet, n.kcm, n.sched, n.containerd} {
			if done, _ := c.exited(); done {
				last = c.name + " exited"
				return true
			}
		}
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = "no Node yet: " + err.Error()
			return false
		}
		if !nodeReady(node) {
			last = "Node not Ready"
			return false
		}
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			last = "no ServiceAccount default/default yet (controller-manager)"
			return false
		}
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			last = "no ConfigMap default/kube-root-ca.crt yet (controller-manager)"
			return false
		}
		last = ""
		return true
	})
	if err == nil && last != "" {
		err = fmt.Errorf("%s", last)
	}
	if err != nil {
		var logs strings.Builder
		for _, c := range []*child{n.containerd, n.kubelet, n.kcm, n.sched} {
			fmt.Fprintf(&logs, "\n--- last lines of %s:\n%s\n", c.log, tail(c.log, 15))
		}
		return fail(fmt.Errorf("the test node did not become ready (%v; %s)%s", err, last, logs.String()))
	}
	n.info.StartSeconds = time.Since(start).Seconds()
	return n, nil
}

// waitFor polls check every 50 ms until it holds, limit passes, ctx ends,
// or watched (if any) exits.
func waitFor(ctx context.Context, limit time.Duration, watched *child, check func() bool) error {
	deadline := time.Now().Add(limit)
	for !check() {
		if watched != nil {
			if done, err := watched.exited(); done {
				return fmt.Errorf("%s exited: %v", watched.name, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func createStorageClass(ctx context.Context, client kubernetes.Interface) error {
	reclaim := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        storageClassName,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       "kubernetes.io/host-path",
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &binding,
	}
	_, err := client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create StorageClass %s: %w", storageClassName, err)
	}
	return nil
}

// clientKubeconfig writes a kubeconfig with a client certificate for user
// in groups, signed by the test CA.
func clientKubeconfig(dir, name, server string, p *pki, user string, groups ...string) (string, error) {
	cert, err := issue(p.ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", fmt.Errorf("generate %s client certificate: %w", name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: []byte(p.CAPEM)}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cert.certPEM, ClientKeyData: cert.keyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: name}
	cfg.CurrentContext = name
	path := filepath.Join(dir, name+".kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func containerdConfig(dir, socket, sandbox string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The VM lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"), socket, socket+".ttrpc", sandbox, filepath.Join(dir, "cni", "net.d"))
}

// cniConfig: a bridge without a gateway or masquerading, so pods get an
// address and no route anywhere.
func cniConfig(dir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
    },
    {"type": "loopback"}
  ]
}
`, nodeTag, bridgeName, podSubnet, filepath.Join(dir, "cni", "ipam"))
}

func kubeletConfiguration(dir, caFile, socket string, port int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%s
# cgroup v1 host without systemd
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /%s
# no swap accounting; no CAP_SYS_RESOURCE
failSwapOn: false
oomScoreAdj: 0
# no attach/detach controller runs for this node
enableControllerAttachDetach: false
podLogsDir: %q
volumePluginDir: %q
resolvConf: ""
# Never evict or garbage-collect images because of the host's disk.
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMaximumGCAge: 0s
serializeImagePulls: false
`, port, caFile, socket, nodeTag, filepath.Join(dir, "pod-logs"), filepath.Join(dir, "kubelet", "plugins"))
}

// cgroupHierarchies are the mounted cgroup hierarchies (v1 controllers,
// or the single v2 one).
func cgroupHierarchies() []string {
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return []string{root}
	}
	entries, _ := os.ReadDir(root)
	var out []string
	for _, e := range entries {
		if !e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			continue
		}
		h := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// prepareCgroupParent creates the cgroup the kubelet puts pods under (it
// must exist), with cpuset's CPUs and memory nodes copied from the root.
func prepareCgroupParent() error {
	for _, h := range cgroupHierarchies() {
		dir := filepath.Join(h, nodeTag)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if cur, _ := os.ReadFile(filepath.Join(dir, f)); strings.TrimSpace(string(cur)) == "" {
					_ = os.WriteFile(filepath.Join(dir, f), v, 0o644)
				}
			}
		}
	}
	return nil
}

// stop takes the node down and leaves nothing running or mounted: the
// kubelet first (so it restarts nothing), then every pod through the
// container runtime (which also releases their network), then containerd;
// then whatever is left is killed and unmounted.
func (n *node) stop() {
	n.sched.stop(2 * time.Second)
	n.kcm.stop(2 * time.Second)
	n.kubelet.stop(5 * time.Second)
	if n.containerd != nil {
		removeAllPods(n.socket)
	}
	n.containerd.stop(5 * time.Second)
	cleanNodeLeftovers(n.files.dir)
	for name := range listDir(hostPathProvisionerDir) {
		if !n.provisioned[name] {
			_ = os.RemoveAll(filepath.Join(hostPathProvisionerDir, name))
		}
	}
	if n.lock != nil {
		n.lock.Close()
	}
}

func listDir(dir string) map[string]bool {
	entries, _ := os.ReadDir(dir)
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

func removeAllPods(socket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := criremote.NewRemoteRuntimeService(ctx, "unix://"+socket, 5*time.Second, nil, false)
	if err != nil {
		return
	}
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return
	}
	for _, p := range pods {
		_ = rs.StopPodSandbox(ctx, p.Id)
		_ = rs.RemovePodSandbox(ctx, p.Id)
	}
}

// cleanNodeLeftovers kills the processes in the node's cgroups and
// containerd shims of any test node, unmounts everything under dir,
// removes the bridge and the node's cgroups. Best effort.
func cleanNodeLeftovers(dir string) {
	for round := 0; round < 3; round++ {
		killed := 0
		for _, h := range cgroupHierarchies() {
			_ = filepath.WalkDir(filepath.Join(h, nodeTag), func(path string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				data, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
				for _, f := range strings.Fields(string(data)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
						killed++
					}
				}
				return nil
			})
		}
		killed += killShims()
		if killed == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	unmountUnder(dir)
	_ = exec.Command("ip", "link", "delete", bridgeName).Run()
	for _, h := range cgroupHierarchies() {
		removeCgroupTree(filepath.Join(h, nodeTag))
	}
}

// killShims kills containerd-shim processes started for a test node's
// containerd (its socket name carries nodeTag).
func killShims() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") && strings.Contains(string(cmdline), nodeTag+"-containerd.sock") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func removeCgroupTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}
