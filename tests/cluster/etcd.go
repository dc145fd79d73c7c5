package main

import (
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs a single-member etcd inside this process, listening on
// ephemeral loopback ports, and returns it once it serves clients.
//
// fsync is off: the data is thrown away with the cluster, and fsync is the
// slowest part of every API write on small disks.
func startEtcd(dir, logFile string) (*embed.Etcd, string, error) {
	cfg := embed.NewConfig()
	cfg.Name = "testcluster"
	cfg.Dir = dir
	cfg.UnsafeNoFsync = true
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{logFile}
	// Unset, every request counts as slow and is logged as a warning.
	cfg.WarningUnaryRequestDuration = 300 * time.Millisecond
	// The gateway would dial the configured ":0" address, not the real one.
	cfg.EnableGRPCGateway = false

	// Port 0: the kernel picks free ports, so parallel clusters never clash.
	// The peer URL is only advertised, never dialled, in a one-member cluster.
	listen := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{listen}
	cfg.ListenPeerUrls = []url.URL{listen}
	cfg.AdvertiseClientUrls = []url.URL{{Scheme: "http", Host: "127.0.0.1:2379"}}
	cfg.AdvertisePeerUrls = []url.URL{{Scheme: "http", Host: "127.0.0.1:2380"}}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("embedded etcd not ready after 60s (see %s)", logFile)
	}
	return e, "http://" + e.Clients[0].Addr().String(), nil
}
