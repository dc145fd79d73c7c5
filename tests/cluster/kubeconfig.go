package main

import (
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a self-contained admin kubeconfig (certificates
// embedded) so that it keeps working when copied elsewhere.
func writeKubeconfig(path, server string, p *pki) error {
	const name = "testcluster"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: []byte(p.CAPEM),
	}
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: []byte(p.AdminCertPEM),
		ClientKeyData:         []byte(p.AdminKeyPEM),
	}
	cfg.Contexts[name] = &clientcmdapi.Context{
		Cluster:   name,
		AuthInfo:  name + "-admin",
		Namespace: "default",
	}
	cfg.CurrentContext = name
	return clientcmd.WriteToFile(*cfg, path)
}
