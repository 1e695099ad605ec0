{{/*
The Cortex deployments ("stacks") of the tenancy mode: one for rows and schemas, one per tenant
for databases. `prefiq deploy render` (generator/src/deploy.rs) makes the same list.
*/}}
{{- define "prefiq.stacks" -}}
{{- $v := .Values -}}
{{- if eq $v.tenancy.mode "databases" -}}
{{- if not $v.tenancy.tenants -}}
{{- fail "tenancy.mode databases needs tenancy.tenants" -}}
{{- end -}}
{{- range $t := $v.tenancy.tenants }}
- name: cortex-{{ $t.name }}
  databaseSecret: {{ default (printf "%s-%s" $v.database.secret $t.name) $t.databaseSecret }}
  tenancy: rows
  host: {{ $t.name }}.{{ $v.ingress.host }}
{{- end }}
{{- else if has $v.tenancy.mode (list "rows" "schemas") -}}
- name: cortex
  databaseSecret: {{ $v.database.secret }}
  tenancy: {{ $v.tenancy.mode }}
  host: {{ $v.ingress.host }}
{{- else -}}
{{- fail "tenancy.mode is rows, schemas or databases" -}}
{{- end -}}
{{- end -}}

{{- define "prefiq.labels" -}}
app.kubernetes.io/name: prefiq
app.kubernetes.io/component: {{ . }}
app.kubernetes.io/managed-by: Helm
{{- end -}}

{{- define "prefiq.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* A Cortex container; the caller adds ports and probes. Arguments: root, stack, name, args,
workers (how many jobs of each app it runs at once). */}}
{{- define "prefiq.container" -}}
{{- $v := .root.Values -}}
name: {{ .name }}
image: {{ include "prefiq.image" .root }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args: [{{ .args }}]
envFrom:
  - configMapRef:
      name: prefiq
env:
  - name: PREFIQ_TENANCY
    value: {{ .stack.tenancy }}
  - name: DATABASE_URL_FILE
    value: /run/secrets/prefiq/database-url
  - name: PREFIQ_APP_DATABASE_URL_FILE
    value: /run/secrets/prefiq/app-database-url
  - name: PREFIQ_SIGNING_KEY_FILE
    value: /run/secrets/prefiq/signing-key
  - name: PREFIQ_PUBLIC_URL
    value: https://{{ .stack.host }}
  - name: PREFIQ_WORKERS
    value: {{ .workers | quote }}
  {{- if $v.mail.secret }}
  - name: PREFIQ_SMTP_URL_FILE
    value: /run/secrets/prefiq/smtp-url
  - name: PREFIQ_MAIL_FROM
    value: {{ $v.mail.from | quote }}
  {{- end }}
volumeMounts:
  - name: secrets
    mountPath: /run/secrets/prefiq
    readOnly: true
resources:
  {{- toYaml $v.resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  runAsUser: 65532
  capabilities:
    drop: [ALL]
{{- end -}}

{{- define "prefiq.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The stack's database URLs (the owner's, and the request pool's, a role row-level security
binds) and the signing key, mounted as files. Arguments: root, stack. */}}
{{- define "prefiq.secretsVolume" -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ .stack.databaseSecret }}
          items:
            - key: url
              path: database-url
            - key: app-url
              path: app-database-url
      - secret:
          name: {{ .root.Values.signingKey.secret }}
          items:
            - key: key
              path: signing-key
      {{- if .root.Values.mail.secret }}
      - secret:
          name: {{ .root.Values.mail.secret }}
          items:
            - key: url
              path: smtp-url
      {{- end }}
{{- end -}}
