{{/*
The labels every object carries: the two the kustomize manifests have, then Helm's own.
tests/helm.rs drops exactly the Helm ones before comparing with kustomize.
*/}}
{{- define "nv.labels" -}}
app.kubernetes.io/name: notebook-volumes
app.kubernetes.io/part-of: notebook-volumes
{{ include "nv.helmLabels" . }}
{{- end }}

{{/* Helm's own labels (the only labels of the policy ConfigMaps besides the policy label). */}}
{{- define "nv.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The replicas' labels; selectors use only the first two, as in kustomize. */}}
{{- define "nv.selectorLabels" -}}
app.kubernetes.io/name: notebook-volumes
app.kubernetes.io/component: webhook
{{- end }}

{{/*
The namespaces the pods, workloads, connect and claims webhooks act in. The label is fixed: the
webhook itself also refuses reviews from namespaces without it (src/server/scope.rs).
*/}}
{{- define "nv.namespaceSelector" -}}
namespaceSelector:
  matchLabels:
    notebook-volumes.io/inject: enabled
    {{- with .Values.namespaceSelector.extraMatchLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ concat (list "kube-system" .Release.Namespace) .Values.namespaceSelector.excludedNamespaces | toJson }}
{{- end }}

{{/* clientConfig of a webhook: (list $ path caBundle), the Service on port 443 at path. */}}
{{- define "nv.clientConfig" -}}
{{- $root := index . 0 -}}
clientConfig:
  service:
    name: notebook-volumes
    namespace: {{ $root.Release.Namespace }}
    path: {{ index . 1 }}
    port: 443
  {{- with index . 2 }}
  caBundle: {{ . }}
  {{- end }}
{{- end }}

{{/* Annotations asking cert-manager or OpenShift to fill caBundle. */}}
{{- define "nv.caInjection" -}}
{{- if eq .Values.certificate.source "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/notebook-volumes-tls
{{- else if eq .Values.certificate.source "openshiftServiceCA" }}
annotations:
  service.beta.openshift.io/inject-cabundle: "true"
{{- end }}
{{- end }}

{{/* A CEL list literal of strings (the schema allows only label-key characters in them). */}}
{{- define "nv.celList" -}}
[{{ range $i, $k := . }}{{ if $i }}, {{ end }}'{{ $k }}'{{ end }}]
{{- end }}
