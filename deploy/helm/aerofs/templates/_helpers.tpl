{{- define "aerofs.labels" -}}
app.kubernetes.io/part-of: aerofs
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "aerofs.secretName" -}}
{{- default "aerofs-credentials" .Values.secrets.existingSecret -}}
{{- end }}

{{- define "aerofs.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{- define "aerofs.credentialEnv" -}}
- name: AEROFS_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "aerofs.secretName" . }}, key: database-url}}
- name: AEROFS_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ include "aerofs.secretName" . }}, key: redis-url}}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ include "aerofs.secretName" . }}, key: s3-access-key-id}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ include "aerofs.secretName" . }}, key: s3-secret-access-key}}
- name: AWS_ENDPOINT_URL
  valueFrom: {secretKeyRef: {name: {{ include "aerofs.secretName" . }}, key: s3-endpoint, optional: true}}
- name: AEROFS_TASK_TIMEOUT
  value: {{ .Values.jobserver.taskTimeout | quote }}
- name: AEROFS_MAX_ATTEMPTS
  value: {{ .Values.jobserver.maxAttempts | quote }}
{{- end }}
