package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"
)

// waitReady polls /readyz as the admin until it answers 200, the API
// server's run loop fails, or ctx ends.
func waitReady(ctx context.Context, server string, p *pki, failed <-chan error) error {
	cert, err := tls.X509KeyPair([]byte(p.AdminCertPEM), []byte(p.AdminKeyPEM))
	if err != nil {
		return fmt.Errorf("load admin certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(p.CAPEM))
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil, // loopback: never through a proxy
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
		},
	}
	defer client.CloseIdleConnections()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-failed:
			return fmt.Errorf("kube-apiserver stopped before it was ready: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		resp, err := client.Get(server + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}
