#!/usr/bin/env bash
# Installs the system packages shakedown's tests and embedded stack use, when missing:
#   prometheus + promtool  (SLO tests, the embedded stack's metrics)
#   redis-server           (cart service tests against a real Redis)
#   postgresql             (order/payment tests against a real Postgres, via initdb + pg_ctl)
#   kubectl                (deploy/ manifests rendered with `kubectl kustomize`; this machine kind
#                           ships one, Debian's kubernetes-client is the fallback)
#   kubernetes-validate    (offline schema check of every deploy/ kustomization, PyPI; in the venv
#                           $SHAKEDOWN_VENV, default ~/.local/share/shakedown/venv, where
#                           tests/deploy_manifests.rs and deploy/validate.sh look for it)
#   schemathesis           (fuzzes the gateway against reference-services/openapi.yaml in
#                           tests/fuzz_api.rs; PyPI, pinned, in the same venv)
# JSON Schemas (slo/, chaos/) are checked in Rust (the jsonschema crate): no Python module needed.
# Tests that need one of these fail in CI (CI=true) when it is missing, naming it.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Debian keeps initdb in /usr/lib/postgresql/<version>/bin; the tests look there too.
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A venv of its own: works where the system Python refuses pip (PEP 668) and needs no root.
venv="${SHAKEDOWN_VENV:-$HOME/.local/share/shakedown/venv}"
schemathesis_version="4.32.5"
pip_missing=()
if ! command -v kubernetes-validate >/dev/null 2>&1 && ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  pip_missing+=("kubernetes-validate==1.37.0")
fi
# Pinned: another version generates other cases from the same seed.
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  pip_missing+=("schemathesis==$schemathesis_version")
fi
if [ ${#pip_missing[@]} -gt 0 ]; then
  echo "setup: installing ${pip_missing[*]} into $venv" >&2
  if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv" >/dev/null 2>&1 || {
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
      python3 -m venv "$venv"
    }
  fi
  "$venv/bin/pip" install --quiet "${pip_missing[@]}" >/dev/null
fi
# Debian's packages may start daemons where an init system exists; shakedown starts its own.
command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v redis-server >/dev/null \
  && command -v kubectl >/dev/null \
  && { command -v kubernetes-validate >/dev/null || "$venv/bin/kubernetes-validate" --version >/dev/null; } \
  && "$venv/bin/schemathesis" --version >/dev/null
echo "setup: ok (prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), $(redis-server --version | awk '{print $3}'))" >&2
