{{/* Names, labels and the pieces every pod shares. */}}

{{- define "tandem.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tandem.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tandem.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tandem.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tandem.labels" -}}
{{ include "tandem.selectorLabels" . }}
app.kubernetes.io/part-of: tandem
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "tandem.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tandem.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "tandem.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "tandem.servedModelName" -}}
{{- default .Values.model.name .Values.model.servedModelName -}}
{{- end -}}

{{/* The model folder as the containers see it. */}}
{{- define "tandem.modelDir" -}}
{{- if eq .Values.model.source "image" -}}
{{- printf "/app/deploy/models/%s" .Values.model.name -}}
{{- else -}}
{{- printf "/models/%s" .Values.model.name -}}
{{- end -}}
{{- end -}}

{{/* The model volume: the PVC, the host folder, or where the init container downloads to (none for image: the demo model ships in the images). */}}
{{- define "tandem.modelVolume" -}}
{{- if ne .Values.model.source "image" }}
- name: model
{{- if eq .Values.model.source "pvc" }}
  persistentVolumeClaim:
    claimName: {{ required "model.pvc.claimName is required when model.source is pvc" .Values.model.pvc.claimName }}
    readOnly: true
{{- else if eq .Values.model.source "hostPath" }}
  hostPath:
    path: {{ required "model.hostPath.path is required when model.source is hostPath" .Values.model.hostPath.path }}
    type: Directory
{{- else if .Values.model.download.cacheClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.model.download.cacheClaim }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.model.download.sizeLimit }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "tandem.modelMount" -}}
{{- if ne .Values.model.source "image" }}
- name: model
  mountPath: {{ include "tandem.modelDir" . }}
  readOnly: true
{{- if and (eq .Values.model.source "pvc") .Values.model.pvc.subPath }}
  subPath: {{ .Values.model.pvc.subPath }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The init container that fetches the checkpoint from a model hub (model.source: download).
`files`: glob patterns to fetch (empty: everything). It runs the image's own downloader
(deploy/images/download-model.ts), idempotent: files already there with the right size stay.
*/}}
{{- define "tandem.modelDownload" -}}
{{- $root := .root -}}
{{- if eq $root.Values.model.source "download" }}
- name: download-model
  image: {{ include "tandem.image" (dict "root" $root "image" .image) }}
  imagePullPolicy: {{ .image.pullPolicy }}
  command: ["node", "/app/deploy/images/download-model.ts"]
  args:
    - --repo
    - {{ required "model.download.repo is required when model.source is download" $root.Values.model.download.repo | quote }}
    - --revision
    - {{ $root.Values.model.download.revision | quote }}
    - --endpoint
    - {{ $root.Values.model.download.endpoint | quote }}
    - --dest
    - /download
    {{- range .files }}
    - --include
    - {{ . | quote }}
    {{- end }}
  {{- if $root.Values.model.download.tokenSecret.name }}
  env:
    - name: HF_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $root.Values.model.download.tokenSecret.name }}
          key: {{ $root.Values.model.download.tokenSecret.key }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $root.Values.model.download.resources | nindent 4 }}
  volumeMounts:
    - name: model
      mountPath: /download
{{- end }}
{{- end -}}

{{/* Pod-level settings every tandem pod shares. */}}
{{- define "tandem.podCommon" -}}
serviceAccountName: {{ include "tandem.serviceAccountName" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod's own identity, for $(POD_NAME) / $(POD_IP) in arguments (`ip`: workers, which advertise it). */}}
{{- define "tandem.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- if .ip }}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
{{- end }}
{{- end -}}

{{/*
Cluster security (values: security.*, nats.*, redis.*). Generated values live in one Secret,
<fullname>-secrets; each may come from a Secret of the user's instead.
*/}}
{{- define "tandem.secretsName" -}}
{{- printf "%s-secrets" (include "tandem.fullname" .) -}}
{{- end -}}

{{/* The generated keys the Secret holds (a list; empty: no Secret). */}}
{{- define "tandem.generatedKeys" -}}
{{- $keys := list -}}
{{- if and .Values.security.clusterSecret.enabled (not .Values.security.clusterSecret.existingSecret) -}}
{{- $keys = append $keys "cluster-secret" -}}
{{- end -}}
{{- if and (eq .Values.router.adminAccess "key") (not .Values.security.adminKey.existingSecret) -}}
{{- $keys = append $keys "admin-key" -}}
{{- end -}}
{{- if and .Values.nats.deploy .Values.nats.auth -}}
{{- $keys = append $keys "nats-password" -}}
{{- end -}}
{{- if and .Values.redis.deploy .Values.redis.auth -}}
{{- $keys = append $keys "redis-password" -}}
{{- end -}}
{{- toJson $keys -}}
{{- end -}}

{{/* secretKeyRef of a generated value or of the user's Secret: (dict "root" . "value" "clusterSecret"|"adminKey") */}}
{{- define "tandem.secretRef" -}}
{{- $v := index .root.Values.security .value -}}
{{- if $v.existingSecret -}}
name: {{ $v.existingSecret }}
key: {{ $v.key }}
{{- else -}}
name: {{ include "tandem.secretsName" .root }}
key: {{ ternary "cluster-secret" "admin-key" (eq .value "clusterSecret") }}
{{- end -}}
{{- end -}}

{{- define "tandem.tlsSecretName" -}}
{{- default (printf "%s-grpc-tls" (include "tandem.fullname" .)) .Values.security.tls.existingSecret -}}
{{- end -}}

{{- define "tandem.tlsServerName" -}}
{{- default (printf "%s-grpc.%s.svc" (include "tandem.fullname" .) .Release.Namespace) .Values.security.tls.serverName -}}
{{- end -}}

{{/*
NATS_URL and REDIS_URL (both tandem commands read them; the flags stay unset), with the
credentials from a Secret: the chart's generated passwords ($(VAR) expands an earlier variable),
or the user's Secret holding the whole URL.
*/}}
{{- define "tandem.backendEnv" -}}
{{- $fullname := include "tandem.fullname" . -}}
{{- if .Values.nats.deploy }}
{{- if .Values.nats.auth }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "tandem.secretsName" . }}, key: nats-password}
- name: NATS_URL
  value: {{ printf "nats://tandem:$(NATS_PASSWORD)@%s-nats:4222" $fullname | quote }}
{{- else }}
- name: NATS_URL
  value: {{ printf "nats://%s-nats:4222" $fullname | quote }}
{{- end }}
{{- else if .Values.nats.urlSecret.name }}
- name: NATS_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.nats.urlSecret.name }}, key: {{ .Values.nats.urlSecret.key }}}
{{- else }}
- name: NATS_URL
  value: {{ required "nats.url or nats.urlSecret.name is required when nats.deploy is false" .Values.nats.url | quote }}
{{- end }}
{{- if .Values.redis.deploy }}
{{- if .Values.redis.auth }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "tandem.secretsName" . }}, key: redis-password}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s-redis:6379" $fullname | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis:6379" $fullname | quote }}
{{- end }}
{{- else if .Values.redis.urlSecret.name }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.redis.urlSecret.name }}, key: {{ .Values.redis.urlSecret.key }}}
{{- else }}
- name: REDIS_URL
  value: {{ required "redis.url or redis.urlSecret.name is required when redis.deploy is false" .Values.redis.url | quote }}
{{- end }}
{{- end -}}

{{/* The cluster secret's file and the TLS files, for every router and worker. */}}
{{- define "tandem.securityEnv" -}}
{{- if .Values.security.clusterSecret.enabled }}
- name: TANDEM_CLUSTER_SECRET_FILE
  value: /etc/tandem/cluster/cluster-secret
{{- end }}
{{- if .Values.security.tls.enabled }}
- name: TANDEM_TLS_CERT
  value: /etc/tandem/tls/tls.crt
- name: TANDEM_TLS_KEY
  value: /etc/tandem/tls/tls.key
- name: TANDEM_TLS_CA
  value: /etc/tandem/tls/ca.crt
- name: TANDEM_TLS_SERVER_NAME
  value: {{ include "tandem.tlsServerName" . | quote }}
{{- end }}
{{- end -}}

{{- define "tandem.securityMounts" -}}
{{- if .Values.security.clusterSecret.enabled }}
- name: cluster-secret
  mountPath: /etc/tandem/cluster
  readOnly: true
{{- end }}
{{- if .Values.security.tls.enabled }}
- name: grpc-tls
  mountPath: /etc/tandem/tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* 288 = 0440: the owner (root) and the pods' fsGroup read it, no one else. */}}
{{- define "tandem.securityVolumes" -}}
{{- if .Values.security.clusterSecret.enabled }}
{{- $ref := include "tandem.secretRef" (dict "root" . "value" "clusterSecret") | fromYaml }}
- name: cluster-secret
  secret:
    secretName: {{ $ref.name }}
    defaultMode: 288
    items:
      - {key: {{ $ref.key }}, path: cluster-secret}
{{- end }}
{{- if .Values.security.tls.enabled }}
- name: grpc-tls
  secret:
    secretName: {{ include "tandem.tlsSecretName" . }}
    defaultMode: 288
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      - {key: ca.crt, path: ca.crt}
{{- end }}
{{- end -}}
