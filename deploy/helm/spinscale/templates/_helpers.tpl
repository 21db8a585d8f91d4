{{/* Chart name, truncated to 63 characters (a DNS-1123 label). */}}
{{- define "spinscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name, unless it already contains the chart name. */}}
{{- define "spinscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "spinscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "spinscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spinscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spinscale.labels" -}}
helm.sh/chart: {{ include "spinscale.chart" . }}
{{ include "spinscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: spinscale
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "spinscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "spinscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace holding the leader-election Lease: the controller's own unless configured. */}}
{{- define "spinscale.leaseNamespace" -}}
{{- default .Release.Namespace .Values.config.leaderElection.namespace }}
{{- end }}

{{- define "spinscale.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The port of a listen address such as ":8080" or "0.0.0.0:8080". */}}
{{- define "spinscale.port" -}}
{{- $parts := splitList ":" (toString .) }}
{{- last $parts }}
{{- end }}

{{/* Refuse combinations that cannot work, at install time rather than at run time. */}}
{{- define "spinscale.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.config.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires config.leaderElection.enabled: without a leader every replica would scale the same apps" }}
{{- end }}
{{- $metrics := include "spinscale.port" .Values.config.server.metricsAddress }}
{{- $health := include "spinscale.port" .Values.config.server.healthAddress }}
{{- if or (not (regexMatch "^[0-9]+$" $metrics)) (eq $metrics "0") }}
{{- fail "config.server.metricsAddress must name a port (e.g. \":8080\"): the Service and ServiceMonitor scrape it" }}
{{- end }}
{{- if or (not (regexMatch "^[0-9]+$" $health)) (eq $health "0") }}
{{- fail "config.server.healthAddress must name a port (e.g. \":8081\"): the probes use it" }}
{{- end }}
{{- end }}

{{/*
The controller's permissions, and nothing more (a test in deploy/ checks the
list): it reads Deployments, Pods and other autoscalers from informer caches
(list/watch), reads pod usage from metrics.k8s.io and the custom and
external metrics APIs (custom.metrics.k8s.io, external.metrics.k8s.io,
whose resources are the metrics' names, hence "*"), patches
deployments/<name>/scale and records Events. It patches a Deployment itself
only to scale an app to zero or wake it, writing the replica count and its
scaled-to-zero annotation in one request. HorizontalPodAutoscalers, KEDA
ScaledObjects and SpinApps are read only to refuse apps they own.
*/}}
{{- define "spinscale.rules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: ["custom.metrics.k8s.io", "external.metrics.k8s.io"]
  resources: ["*"]
  verbs: ["get", "list"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list", "watch"]
- apiGroups: ["core.spinkube.dev"]
  resources: ["spinapps"]
  verbs: ["list", "watch"]
{{- end }}
