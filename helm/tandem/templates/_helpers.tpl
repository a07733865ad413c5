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

{{- define "tandem.natsUrl" -}}
{{- if .Values.nats.deploy -}}
{{- printf "nats://%s-nats:4222" (include "tandem.fullname" .) -}}
{{- else -}}
{{- required "nats.url is required when nats.deploy is false" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "tandem.redisUrl" -}}
{{- if .Values.redis.deploy -}}
{{- printf "redis://%s-redis:6379" (include "tandem.fullname" .) -}}
{{- else -}}
{{- required "redis.url is required when redis.deploy is false" .Values.redis.url -}}
{{- end -}}
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

{{/* The pod's own identity, for $(POD_NAME) / $(POD_IP) in arguments. */}}
{{- define "tandem.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: NODE_NAME
  valueFrom:
    fieldRef: {fieldPath: spec.nodeName}
{{- end -}}
