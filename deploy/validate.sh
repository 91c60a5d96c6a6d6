#!/usr/bin/env bash
# Offline checks of everything in deploy/ (no cluster needed):
#   - every kustomization renders (kubectl kustomize);
#   - the renders validate against the Kubernetes schemas, when kubernetes-validate is installed
#     (scripts/setup.sh puts it in ~/.local/share/shakedown/venv; or pip install
#     kubernetes-validate); Strimzi's Kafka, KafkaNodePool and KafkaTopic have no schema there and
#     only warn;
#   - promtool checks the Prometheus config and rules and runs the rule unit tests.
# Usage: deploy/validate.sh   (from anywhere; exits non-zero on the first failure)
set -euo pipefail
cd "$(dirname "$0")"

# The oldest Kubernetes these manifests target (preStop sleep action: 1.30).
K8S_VERSION="${K8S_VERSION:-1.30}"

validate="${KUBERNETES_VALIDATE:-}"
[ -n "$validate" ] || validate=$(command -v kubernetes-validate || true)
venv="${SHAKEDOWN_VENV:-$HOME/.local/share/shakedown/venv}"
[ -n "$validate" ] || { [ -x "$venv/bin/kubernetes-validate" ] && validate="$venv/bin/kubernetes-validate"; } || true
[ -n "$validate" ] || echo "   kubernetes-validate not found: schema checks skipped (scripts/setup.sh installs it)"

for dir in base kafka kafka-cluster observability chaos load load/reports-reader overlays/dev overlays/prod; do
  echo "== kubectl kustomize deploy/$dir"
  kubectl kustomize "$dir" >/dev/null
  if [ -n "$validate" ]; then
    echo "== kubectl kustomize deploy/$dir | kubernetes-validate --strict -k $K8S_VERSION -"
    kubectl kustomize "$dir" | "$validate" --strict --quiet -k "$K8S_VERSION" -
  fi
done

echo "== promtool check rules"
promtool check rules observability/rules/*.yml
echo "== promtool test rules"
promtool test rules observability/tests/rules_test.yml

echo "== promtool check config"
if ! out=$(promtool check config observability/prometheus.yml 2>&1); then
  if grep -q "field kubernetes_sd_configs not found" <<<"$out"; then
    # Debian's promtool is built without Kubernetes service discovery. Check everything else
    # (relabelling, rule files) on a copy whose kubernetes_sd_configs become static targets.
    echo "   this promtool has no Kubernetes service discovery: checking a copy with static targets"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp -r observability/rules "$tmp/rules"
    awk '
      /^    kubernetes_sd_configs:/ { print "    static_configs:"; print "      - targets: [\"localhost:9090\"]"; skip = 1; next }
      skip && /^      / { next }
      { skip = 0; print }
    ' observability/prometheus.yml >"$tmp/prometheus.yml"
    promtool check config "$tmp/prometheus.yml"
  else
    echo "$out" >&2
    exit 1
  fi
else
  echo "$out"
fi
echo "deploy: all checks passed"
