{{/* Names, labels and the parts every Slipway pod shares. */}}

{{- define "slipway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "slipway.fullname" -}}
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

{{/* A component's resource name: <fullname>-<component>, within 63 characters. */}}
{{- define "slipway.componentName" -}}
{{- printf "%s-%s" (include "slipway.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component }}
{{- end }}

{{- define "slipway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "slipway.labels" -}}
helm.sh/chart: {{ include "slipway.chart" . }}
{{ include "slipway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "slipway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slipway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component ({root, component}). */}}
{{- define "slipway.componentLabels" -}}
{{ include "slipway.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "slipway.componentSelectorLabels" -}}
{{ include "slipway.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "slipway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "slipway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "slipway.secretName" -}}
{{- default (include "slipway.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "slipway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "slipway.trackingUrl" -}}
{{- printf "http://%s:%v" (include "slipway.componentName" (dict "root" . "component" "tracking")) .Values.tracking.service.port }}
{{- end }}

{{/*
Refuse to install without a database: every pod would fall back to a SQLite file of its
own. `helm lint` renders with neither IsInstall nor IsUpgrade set, so it lints the
defaults; `helm install`, `upgrade` and `template` render as an install or upgrade.
*/}}
{{- define "slipway.validate" -}}
{{- if and (or .Release.IsInstall .Release.IsUpgrade) (not .Values.secret.existingSecret) (not .Values.secret.databaseUrl) }}
{{- fail "secret.databaseUrl is required (a postgresql:// URL every pod shares), or secret.existingSecret naming a Secret that holds SLIPWAY_DATABASE__URL" }}
{{- end }}
{{- if and .Values.config.artifacts .Values.config.artifacts.root (not (regexMatch "^[a-z][a-z0-9+.-]*://" (toString .Values.config.artifacts.root))) }}
{{- fail (printf "config.artifacts.root must be an object store URI shared by every pod (s3://bucket/prefix), not the local path %q" (toString .Values.config.artifacts.root)) }}
{{- end }}
{{- end }}

{{/* Pod annotations: a change of settings or secrets rolls every pod. */}}
{{- define "slipway.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secret.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod-level fields every component shares (under spec.template.spec). */}}
{{- define "slipway.podCommon" -}}
serviceAccountName: {{ include "slipway.serviceAccountName" . }}
automountServiceAccountToken: false
{{- /* No SLIPWAY_CONTROL_PLANE_PORT=tcp://... and the like beside Slipway's own settings. */}}
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "slipway.fullname" . }}
  - name: home
    emptyDir:
      sizeLimit: {{ .Values.scratch.sizeLimit }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
{{- end }}

{{/* The container fields every component shares (image, settings, volumes, security). */}}
{{- define "slipway.containerCommon" -}}
image: {{ include "slipway.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
envFrom:
  - secretRef:
      name: {{ include "slipway.secretName" . }}
volumeMounts:
  - name: config
    mountPath: /etc/slipway
    readOnly: true
  - name: home
    mountPath: /var/lib/slipway
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/* The environment every container gets, then a component's own ({root, env}). */}}
{{- define "slipway.env" -}}
env:
  - name: SLIPWAY_CONFIG
    value: /etc/slipway/slipway.yaml
  - name: SLIPWAY_HOME
    value: /var/lib/slipway
  {{- range $name, $value := .root.Values.env }}
  - name: {{ $name }}
    value: {{ $value | toString | quote }}
  {{- end }}
  {{- range $name, $value := .env }}
  - name: {{ $name }}
    value: {{ $value | toString | quote }}
  {{- end }}
  {{- with .root.Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* HTTP probes on one path ({path, port, probes}): startup, then liveness and readiness. */}}
{{- define "slipway.httpProbes" -}}
startupProbe:
  httpGet:
    path: {{ .path }}
    port: http
  periodSeconds: 5
  timeoutSeconds: {{ .probes.timeoutSeconds }}
  failureThreshold: {{ div .probes.startupSeconds 5 | max 1 }}
livenessProbe:
  httpGet:
    path: {{ .path }}
    port: http
  initialDelaySeconds: {{ .probes.initialDelaySeconds }}
  periodSeconds: {{ .probes.periodSeconds }}
  timeoutSeconds: {{ .probes.timeoutSeconds }}
  failureThreshold: {{ .probes.failureThreshold }}
readinessProbe:
  httpGet:
    path: {{ .path }}
    port: http
  initialDelaySeconds: {{ .probes.initialDelaySeconds }}
  periodSeconds: {{ .probes.periodSeconds }}
  timeoutSeconds: {{ .probes.timeoutSeconds }}
  failureThreshold: {{ .probes.failureThreshold }}
{{- end }}
