package main

import (
	"os"
	"path/filepath"
)

// auditPolicy records pod requests at Metadata level, which carries the
// annotations admission webhooks add (for example
// "pods.notebook-volumes.io/user"), and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: [pods, pods/ephemeralcontainers]
  - level: None
`

// auditArgs writes the audit policy into dir and returns the kube-apiserver
// flags that log to dir/audit.log, synchronously, so a test can read an
// event as soon as its request returned.
func auditArgs(dir string) ([]string, string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, "", err
	}
	log := filepath.Join(dir, "audit.log")
	return []string{
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + log,
		"--audit-log-mode=blocking",
		"--audit-log-format=json",
	}, log, nil
}
