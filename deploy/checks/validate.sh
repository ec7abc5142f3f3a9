#!/usr/bin/env bash
# Schema checks of deploy/ that need no Docker engine and no cluster:
#  - deploy/compose.yaml against the Compose specification's JSON schema (check-jsonschema's
#    built-in vendor.compose-spec);
#  - deploy/k8s/*.yaml against the Kubernetes OpenAPI schemas of the version below, strictly
#    (unknown fields are errors) (kubernetes-validate);
#  - the Prometheus Operator resources (PodMonitor, PrometheusRule), which have no schema there,
#    against deploy/checks/monitoring.schema.json (written from the operator's CRDs, the fields
#    we use), and every PromQL expression of the rules and the dashboard parsed (promql-parser);
#  - with kustomize on PATH (or KUSTOMIZE=…): `kustomize build deploy/k8s`, validated again.
# Usage: deploy/checks/validate.sh [VENV_DIR]   (default target/deploy-checks-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${1:-target/deploy-checks-venv}"
bin="$venv/bin"
kubernetes_version="${EP_KUBERNETES_VERSION:-1.33.0}"
failures=0 passes=0
check() { # description, command…
  local what="$1"; shift
  if "$@"; then echo "ok: $what"; passes=$((passes + 1)); else echo "FAILED: $what"; failures=$((failures + 1)); fi
}

check "compose.yaml against the Compose specification" \
  "$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
core=()
for file in deploy/k8s/*.yaml; do
  case "$(basename "$file")" in
    kustomization.yaml|podmonitor.yaml|prometheusrule.yaml) ;;
    *) core+=("$file") ;;
  esac
done
check "Kubernetes manifests against the Kubernetes $kubernetes_version schemas (strict)" \
  "$bin/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "${core[@]}"
check "PodMonitor, PrometheusRule and kustomization.yaml against deploy/checks/monitoring.schema.json" \
  "$bin/python" deploy/checks/check_monitoring.py
kustomize="${KUSTOMIZE:-$(command -v kustomize || true)}"
if [[ -n "$kustomize" ]]; then
  rendered="$(mktemp)"
  check "kustomize build deploy/k8s" "$kustomize" build deploy/k8s -o "$rendered"
  check "the kustomize output against the Kubernetes $kubernetes_version schemas (strict)" \
    "$bin/python" deploy/checks/check_monitoring.py --rendered "$rendered" \
      --kubernetes-validate "$bin/kubernetes-validate" --kubernetes-version "$kubernetes_version"
  rm -f "$rendered"
else
  echo "skipped: kustomize build (no kustomize on PATH; set KUSTOMIZE)"
fi
echo "deploy checks: $passes passed, $failures failed"
((failures == 0))
