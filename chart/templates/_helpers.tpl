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
{{- $set := .Values.pygslb.leaderElection -}}
{{- if kindIs "bool" $set -}}{{- if $set -}}true{{- end -}}
{{- else if gt (int .Values.pygslb.replicas) 1 -}}true{{- end -}}
{{- end -}}

{{/* DNS_ZONES as the app and k8gb read it: parent:loadBalancedZone:negTTL;... (negTTL defaults to 300, a
     string of digits counts, as in k8gb). With no dnsZones, k8gb's legacy edgeDNSZone + dnsZone pair is the
     one zone, as k8gb's chart maps it (negTTL: the legacy k8gb.dnsZoneNegTTL, else 300). */}}
{{- define "pygslb.zoneList" -}}
{{- $zones := list -}}
{{- range .Values.k8gb.dnsZones -}}
{{- $zones = append $zones (dict "parentZone" .parentZone "loadBalancedZone" .loadBalancedZone "negTTL" (hasKey . "dnsZoneNegTTL" | ternary .dnsZoneNegTTL 300)) -}}
{{- end -}}
{{- $k8gb := .Values.k8gb -}}
{{- if and (not $zones) $k8gb.dnsZone $k8gb.edgeDNSZone -}}
{{- $negTTL := 300 -}}
{{- if not (kindIs "invalid" $k8gb.dnsZoneNegTTL) -}}{{- $negTTL = $k8gb.dnsZoneNegTTL -}}{{- end -}}
{{- $zones = append $zones (dict "parentZone" $k8gb.edgeDNSZone "loadBalancedZone" $k8gb.dnsZone "negTTL" $negTTL) -}}
{{- end -}}
{{- toJson $zones -}}
{{- end -}}

{{- define "pygslb.dnsZones" -}}
{{- $zones := list -}}
{{- range (include "pygslb.zoneList" . | fromJsonArray) -}}
{{- $zones = append $zones (printf "%s:%s:%v" (trimSuffix "." .parentZone) (trimSuffix "." .loadBalancedZone) (int .negTTL)) -}}
{{- end -}}
{{- join ";" $zones -}}
{{- end -}}

{{/* EDGE_DNS_SERVERS: k8gb's legacy single edgeDNSServer wins when set, as in k8gb's chart. */}}
{{- define "pygslb.edgeDNSServers" -}}
{{- if .Values.k8gb.edgeDNSServer -}}
{{- .Values.k8gb.edgeDNSServer -}}
{{- else -}}
{{- join "," .Values.k8gb.edgeDNSServers -}}
{{- end -}}
{{- end -}}

{{/* LOG_LEVEL: k8gb's fatal and panic are error, the most severe level pygslb logs at. */}}
{{- define "pygslb.logLevel" -}}
{{- $level := .Values.k8gb.log.level -}}
{{- has $level (list "fatal" "panic") | ternary "error" $level -}}
{{- end -}}

{{/* The DNS Service type: pygslb.dns.service.type when set, else k8gb's coredns.serviceType (the built-in
     server takes CoreDNS's place), else ClusterIP. */}}
{{- define "pygslb.dnsServiceType" -}}
{{- .Values.pygslb.dns.service.type | default (.Values.coredns).serviceType | default "ClusterIP" -}}
{{- end -}}

{{/* Pull secrets: pygslb.imagePullSecrets and k8gb's global.imagePullSecrets, each once. */}}
{{- define "pygslb.imagePullSecrets" -}}
{{- $secrets := concat (.Values.pygslb.imagePullSecrets | default list) ((.Values.global).imagePullSecrets | default list) | uniq -}}
{{- with $secrets -}}{{- toYaml . -}}{{- end -}}
{{- end -}}

{{/* k8gb values a k8gb values file may carry that have no effect here, when set to something pygslb does
     not do: one "key: why" line each, for NOTES. */}}
{{- define "pygslb.ignoredK8gbValues" -}}
{{- $k8gb := .Values.k8gb -}}
{{- $ignored := list -}}
{{- if or $k8gb.imageRepo $k8gb.imageTag -}}
{{- $ignored = append $ignored "k8gb.imageRepo, k8gb.imageTag: the image is pygslb.image.*" -}}
{{- end -}}
{{- if or (eq (toString $k8gb.deployCrds) "false") (eq (toString $k8gb.installLegacyCrds) "false") -}}
{{- $ignored = append $ignored "k8gb.deployCrds, k8gb.installLegacyCrds: Helm installs chart/crds/ (use helm install --skip-crds)" -}}
{{- end -}}
{{- if eq (toString $k8gb.deployRbac) "false" -}}
{{- $ignored = append $ignored "k8gb.deployRbac: use rbac.create=false and serviceAccount.create=false" -}}
{{- end -}}
{{- if $k8gb.metricsAddress -}}
{{- $ignored = append $ignored (printf "k8gb.metricsAddress: /metrics is served on pygslb.api.port (%v)" .Values.pygslb.api.port) -}}
{{- end -}}
{{- if not (kindIs "invalid" $k8gb.zoneDelegationRecoverySeconds) -}}
{{- $ignored = append $ignored "k8gb.zoneDelegationRecoverySeconds: pygslb retries the edge delegation every zoneDelegationReconcileRequeueSeconds" -}}
{{- end -}}
{{- if ($k8gb.validatingAdmissionPolicy).enabled -}}
{{- $ignored = append $ignored "k8gb.validatingAdmissionPolicy.enabled: no ValidatingAdmissionPolicy is installed" -}}
{{- end -}}
{{- range $key := list "splitBrainCheck" "coredns" "dynamicZones" "extraVolumes" "extraVolumeMounts" -}}
{{- if not (empty (get $k8gb $key)) -}}
{{- $ignored = append $ignored (printf "k8gb.%s" $key) -}}
{{- end -}}
{{- end -}}
{{- if and (or $k8gb.dnsZone $k8gb.edgeDNSZone) $k8gb.dnsZones -}}
{{- $ignored = append $ignored "k8gb.dnsZone, k8gb.edgeDNSZone: k8gb.dnsZones is set and wins (set dnsZones: [] to use the legacy pair)" -}}
{{- end -}}
{{- range $i, $zone := $k8gb.dnsZones -}}
{{- range $key := list "extraPlugins" "extraServerBlocks" "geoDataFilePath" "geoDataField" -}}
{{- if not (empty (get $zone $key)) -}}
{{- $ignored = append $ignored (printf "k8gb.dnsZones[%d].%s: a CoreDNS setting" $i $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq (toString (.Values.infoblox).sslVerify) "false" -}}
{{- $ignored = append $ignored "infoblox.sslVerify=false: pygslb verifies the grid's certificate (INFOBLOX_SSL_VERIFY=false in pygslb.extraEnv turns that off)" -}}
{{- end -}}
{{- if not (kindIs "invalid" (.Values.infoblox).httpPoolConnections) -}}
{{- $ignored = append $ignored "infoblox.httpPoolConnections" -}}
{{- end -}}
{{- $coredns := list -}}
{{- range $key := without (keys (.Values.coredns | default dict)) "serviceType" | sortAlpha -}}
{{- $coredns = append $coredns (printf "coredns.%s" $key) -}}
{{- end -}}
{{- with $coredns -}}
{{- $ignored = append $ignored (printf "%s: there is no CoreDNS; pygslb.dns.* configures the built-in server" (join ", " .)) -}}
{{- end -}}
{{- $extdns := list -}}
{{- range $key := without (keys (.Values.extdns | default dict)) "enabled" | sortAlpha -}}
{{- $extdns = append $extdns (printf "extdns.%s" $key) -}}
{{- end -}}
{{- with $extdns -}}
{{- $ignored = append $ignored (printf "%s: there is no ExternalDNS" (join ", " .)) -}}
{{- end -}}
{{- if (.Values.openshift).enabled -}}
{{- $ignored = append $ignored "openshift.enabled: no OpenShift-specific RBAC is installed" -}}
{{- end -}}
{{- join "\n" $ignored -}}
{{- end -}}

{{- define "pygslb.edgeDNSType" -}}
{{- if .Values.infoblox.enabled -}}infoblox{{- else if .Values.rfc2136.enabled -}}rfc2136{{- else -}}none{{- end -}}
{{- end -}}

{{/* Whether the OpenTelemetry Collector sidecar (and its ConfigMap and Service) exist. */}}
{{- define "pygslb.otelSidecar" -}}
{{- if and .Values.tracing.enabled .Values.tracing.sidecar -}}true{{- end -}}
{{- end -}}

{{/* OTEL_EXPORTER_OTLP_ENDPOINT: tracing.endpoint, except that gRPC to the default localhost:4318 (the
     sidecar's OTLP/HTTP receiver, where gRPC finds no one) goes to the sidecar's gRPC port. */}}
{{- define "pygslb.otlpEndpoint" -}}
{{- if and (eq .Values.tracing.protocol "grpc") (eq .Values.tracing.endpoint "localhost:4318") -}}
localhost:4317
{{- else -}}
{{- .Values.tracing.endpoint -}}
{{- end -}}
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

{{/* Whether an OTLP endpoint (host:port or URL) names this pod's loopback: localhost (and *.localhost),
     127.0.0.0/8, ::1, or the unspecified 0.0.0.0 / ::. */}}
{{- define "pygslb.loopback" -}}
{{- $host := regexReplaceAll "^(?i)(https?://)?(\\[[^\\]]*\\]|[^:/]*).*$" . "${2}" | lower | trimSuffix "." -}}
{{- if or (eq $host "localhost") (hasSuffix ".localhost" $host) (regexMatch "^127\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host) (has $host (list "[::1]" "::1" "0.0.0.0" "[::]" "[0:0:0:0:0:0:0:1]")) -}}true{{- end -}}
{{- end -}}

{{/* Settings the schema cannot express, refused with a message that says what to change. */}}
{{- define "pygslb.validate" -}}
{{- if and .Values.infoblox.enabled .Values.rfc2136.enabled -}}
{{- fail "infoblox.enabled and rfc2136.enabled are both true: pick one edge DNS provider" -}}
{{- end -}}
{{- if (.Values.extdns).enabled -}}
{{- fail "extdns.enabled=true: pygslb has no ExternalDNS edge; publish the delegation with infoblox.enabled=true or rfc2136.enabled=true (BIND, PowerDNS, Knot, ... with TSIG), or leave both off (no edge updates)" -}}
{{- end -}}
{{- $zones := include "pygslb.zoneList" . | fromJsonArray -}}
{{- if not $zones -}}
{{- fail "k8gb.dnsZones is empty: list at least one zone (or set k8gb's legacy k8gb.dnsZone and k8gb.edgeDNSZone)" -}}
{{- end -}}
{{- range $zones -}}
{{- $parent := trimSuffix "." .parentZone | lower -}}
{{- $zone := trimSuffix "." .loadBalancedZone | lower -}}
{{- if not (hasSuffix (printf ".%s" $parent) $zone) -}}
{{- fail (printf "k8gb.dnsZones: loadBalancedZone %q must be a subdomain of parentZone %q" .loadBalancedZone .parentZone) -}}
{{- end -}}
{{- end -}}
{{- /* Spans sent to the sidecar's port of the other protocol go nowhere: the protocol the app uses
     (pygslb.extraEnv's, the traces one first, else tracing.protocol) must be the sidecar port's. */ -}}
{{- if include "pygslb.otelSidecar" . -}}
{{- $protocol := .Values.tracing.protocol -}}
{{- $from := "tracing.protocol" -}}
{{- range $name := list "OTEL_EXPORTER_OTLP_PROTOCOL" "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" -}}
{{- range $.Values.pygslb.extraEnv -}}
{{- if and (eq .name $name) (toString .value) -}}
{{- $protocol = toString .value -}}
{{- $from = printf "pygslb.extraEnv %s" $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $endpoint := include "pygslb.otlpEndpoint" . | trimPrefix "http://" | trimSuffix "/" | lower -}}
{{- $port := dict "localhost:4318" "http/protobuf" "127.0.0.1:4318" "http/protobuf" "localhost:4317" "grpc" "127.0.0.1:4317" "grpc" -}}
{{- $wanted := get $port $endpoint -}}
{{- if and $wanted (ne $protocol $wanted) -}}
{{- fail (printf "%s is %s but tracing.endpoint %s is the sidecar's %s port: set tracing.protocol=%s instead (it picks the sidecar's port: 4318 for http/protobuf, 4317 for grpc)" $from $protocol .Values.tracing.endpoint $wanted $protocol) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tracing.enabled (not .Values.tracing.sidecar) (include "pygslb.loopback" .Values.tracing.endpoint) -}}
{{- fail (printf "tracing.sidecar=false needs tracing.endpoint set to your own collector (host:port), not %q: without the sidecar nothing listens on the pod's loopback" .Values.tracing.endpoint) -}}
{{- end -}}
{{- if and .Values.pygslb.dns.enabled (eq (int .Values.pygslb.api.port) (int .Values.pygslb.dns.port)) -}}
{{- fail (printf "pygslb.api.port and pygslb.dns.port are both %v: the REST API and the DNS server (TCP) cannot listen on one port" .Values.pygslb.api.port) -}}
{{- end -}}
{{- if and (not .Values.pygslb.dns.service.type) (eq (toString (.Values.coredns).serviceType) "ExternalName") -}}
{{- fail "coredns.serviceType=ExternalName: the DNS Service of pygslb's built-in server must select its pods; set pygslb.dns.service.type (ClusterIP, NodePort or LoadBalancer)" -}}
{{- end -}}
{{- if and .Values.rfc2136.enabled (not .Values.rfc2136.tsigSecretRef.name) -}}
{{- fail "rfc2136.enabled=true needs rfc2136.tsigSecretRef.name: the Secret holding the TSIG secret" -}}
{{- end -}}
{{- end -}}
