{{/* Object names: <release>-pygslb unless the release name already says pygslb. */}}
{{- define "pygslb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pygslb.fullname" -}}
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

{{- define "pygslb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pygslb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pygslb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pygslb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pygslb
{{- end -}}

{{- define "pygslb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pygslb.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pygslb.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* Leader election follows the replica count: one reconciler among several replicas. */}}
{{- define "pygslb.leaderElection" -}}
{{- if gt (int .Values.pygslb.replicas) 1 -}}true{{- end -}}
{{- end -}}

{{/* DNS_ZONES as the app and k8gb read it: parent:loadBalancedZone:negTTL;... (negTTL defaults to 300). */}}
{{- define "pygslb.dnsZones" -}}
{{- $zones := list -}}
{{- range .Values.k8gb.dnsZones -}}
{{- $negTTL := 300 -}}
{{- if hasKey . "dnsZoneNegTTL" -}}{{- $negTTL = .dnsZoneNegTTL -}}{{- end -}}
{{- $zones = append $zones (printf "%s:%s:%v" (trimSuffix "." .parentZone) (trimSuffix "." .loadBalancedZone) (int $negTTL)) -}}
{{- end -}}
{{- join ";" $zones -}}
{{- end -}}

{{- define "pygslb.edgeDNSType" -}}
{{- if .Values.infoblox.enabled -}}infoblox{{- else if .Values.rfc2136.enabled -}}rfc2136{{- else -}}none{{- end -}}
{{- end -}}

{{/* Whether the OpenTelemetry Collector sidecar (and its ConfigMap and Service) exist. */}}
{{- define "pygslb.otelSidecar" -}}
{{- if and .Values.tracing.enabled .Values.tracing.sidecar -}}true{{- end -}}
{{- end -}}

{{/* The sidecar's configuration: OTLP in (HTTP + gRPC), OTLP out to the release's Jaeger, unless
     tracing.otelConfig replaces it (ignored when deployJaeger is on, as in k8gb). */}}
{{- define "pygslb.otelConfig" -}}
{{- if or .Values.tracing.deployJaeger (not .Values.tracing.otelConfig) -}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
exporters:
  otlp:
    endpoint: jaeger-collector.{{ .Release.Namespace }}:4317
    tls:
      insecure: true
    retry_on_failure:
      enabled: true
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: []
      exporters: [otlp]
{{- else -}}
{{- toYaml .Values.tracing.otelConfig -}}
{{- end -}}
{{- end -}}

{{/* Settings the schema cannot express, refused with a message that says what to change. */}}
{{- define "pygslb.validate" -}}
{{- if and .Values.infoblox.enabled .Values.rfc2136.enabled -}}
{{- fail "infoblox.enabled and rfc2136.enabled are both true: pick one edge DNS provider" -}}
{{- end -}}
{{- range .Values.k8gb.dnsZones -}}
{{- $parent := trimSuffix "." .parentZone | lower -}}
{{- $zone := trimSuffix "." .loadBalancedZone | lower -}}
{{- if not (hasSuffix (printf ".%s" $parent) $zone) -}}
{{- fail (printf "k8gb.dnsZones: loadBalancedZone %q must be a subdomain of parentZone %q" .loadBalancedZone .parentZone) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tracing.enabled (not .Values.tracing.sidecar) (hasPrefix "localhost:" .Values.tracing.endpoint) -}}
{{- fail "tracing.sidecar=false needs tracing.endpoint set to your own collector (host:port), not localhost" -}}
{{- end -}}
{{- if and .Values.rfc2136.enabled (not .Values.rfc2136.tsigSecretRef.name) -}}
{{- fail "rfc2136.enabled=true needs rfc2136.tsigSecretRef.name: the Secret holding the TSIG secret" -}}
{{- end -}}
{{- end -}}
