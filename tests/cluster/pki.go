package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the file names of everything the API server and its admin need.
// All keys are ECDSA P-256: fast to generate, so every start gets fresh ones.
type pki struct {
	CAFile, CAPEM             string
	ServingCertFile           string
	ServingKeyFile            string
	AdminCertPEM, AdminKeyPEM string
	SAKeyFile, SAPubFile      string
	// ca signs the node's and the controllers' client certificates.
	ca *issued
}

// issued is a certificate (or CA) together with its key.
type issued struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	keyPEM  []byte
}

// writePKI generates a throw-away CA, the serving certificate (127.0.0.1,
// ::1, localhost), an admin client certificate in group system:masters and
// the service-account token signing key pair, and writes them to dir. When
// dir already holds them (a restart on a kept -data-dir), they are reused, so
// clients of the previous run and its service-account tokens keep working.
func writePKI(dir string) (*pki, error) {
	if _, err := os.Stat(filepath.Join(dir, "sa.pub")); err == nil {
		return loadPKI(dir)
	}
	ca, err := issue(nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "notebook-volumes-testcluster-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	})
	if err != nil {
		return nil, fmt.Errorf("generate CA: %w", err)
	}
	serving, err := issue(ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	})
	if err != nil {
		return nil, fmt.Errorf("generate serving certificate: %w", err)
	}
	admin, err := issue(ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "testcluster-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("generate admin client certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate service-account signing key: %w", err)
	}
	saKeyPEM, err := privateKeyPEM(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, fmt.Errorf("encode service-account public key: %w", err)
	}

	p := &pki{
		CAFile:          filepath.Join(dir, "ca.crt"),
		CAPEM:           string(ca.certPEM),
		ServingCertFile: filepath.Join(dir, "apiserver.crt"),
		ServingKeyFile:  filepath.Join(dir, "apiserver.key"),
		AdminCertPEM:    string(admin.certPEM),
		AdminKeyPEM:     string(admin.keyPEM),
		SAKeyFile:       filepath.Join(dir, "sa.key"),
		SAPubFile:       filepath.Join(dir, "sa.pub"),
		ca:              ca,
	}
	files := map[string][]byte{
		p.CAFile:                        ca.certPEM,
		filepath.Join(dir, "ca.key"):    ca.keyPEM,
		p.ServingCertFile:               serving.certPEM,
		p.ServingKeyFile:                serving.keyPEM,
		filepath.Join(dir, "admin.crt"): admin.certPEM,
		filepath.Join(dir, "admin.key"): admin.keyPEM,
		p.SAKeyFile:                     saKeyPEM,
		p.SAPubFile:                     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	return p, nil
}

// loadPKI reads what writePKI wrote to dir.
func loadPKI(dir string) (*pki, error) {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reuse the PKI in %s: %w", dir, err)
		}
		return data, nil
	}
	caPEM, err := read("ca.crt")
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := read("ca.key")
	if err != nil {
		return nil, err
	}
	adminCert, err := read("admin.crt")
	if err != nil {
		return nil, err
	}
	adminKey, err := read("admin.key")
	if err != nil {
		return nil, err
	}
	certBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(caKeyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, fmt.Errorf("reuse the PKI in %s: ca.crt or ca.key is not PEM", dir)
	}
	caCert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reuse the PKI in %s: ca.crt: %w", dir, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reuse the PKI in %s: ca.key: %w", dir, err)
	}
	caKey, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("reuse the PKI in %s: ca.key is not an ECDSA key", dir)
	}
	return &pki{
		CAFile:          filepath.Join(dir, "ca.crt"),
		CAPEM:           string(caPEM),
		ServingCertFile: filepath.Join(dir, "apiserver.crt"),
		ServingKeyFile:  filepath.Join(dir, "apiserver.key"),
		AdminCertPEM:    string(adminCert),
		AdminKeyPEM:     string(adminKey),
		SAKeyFile:       filepath.Join(dir, "sa.key"),
		SAPubFile:       filepath.Join(dir, "sa.pub"),
		ca:              &issued{cert: caCert, certPEM: caPEM, key: caKey, keyPEM: caKeyPEM},
	}, nil
}

// issue creates a key and a certificate from tmpl, signed by parent, or
// self-signed when parent is nil.
func issue(parent *issued, tmpl *x509.Certificate) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour) // tolerate small clock skew
	tmpl.NotAfter = now.Add(365 * 24 * time.Hour)

	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &issued{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
		keyPEM:  keyPEM,
	}, nil
}

// privateKeyPEM encodes key as PKCS#8, which both Go and rustls read.
func privateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
