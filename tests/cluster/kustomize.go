package main

import (
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// runKustomize implements "testcluster kustomize DIR": it renders the
// kustomization in DIR with the kustomize library that kubectl v1.36 embeds
// (as `kubectl kustomize DIR` would) and prints the multi-document YAML on
// stdout. The Rust tests use it to apply the shipped manifests without
// needing kubectl or kustomize on the machine.
func runKustomize(args []string) int {
	fs := flag.NewFlagSet("kustomize", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: testcluster kustomize DIR")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dir := fs.Arg(0)

	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcluster kustomize %s: %v\n", dir, err)
		return 1
	}
	out, err := resources.AsYaml()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcluster kustomize %s: %v\n", dir, err)
		return 1
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster kustomize: write: %v\n", err)
		return 1
	}
	return 0
}
