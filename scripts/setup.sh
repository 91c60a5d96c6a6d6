#!/usr/bin/env bash
# Installs the system packages shakedown's tests and embedded stack use, when missing:
#   prometheus + promtool  (SLO tests, the embedded stack's metrics)
#   redis-server           (cart service tests against a real Redis)
#   postgresql             (order/payment tests against a real Postgres, via initdb + pg_ctl)
#   kubectl                (deploy/ manifests rendered with `kubectl kustomize`; this machine kind
#                           ships one, Debian's kubernetes-client is the fallback)
#   python3 jsonschema+yaml (the SLO examples validated against their JSON Schema)
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
if ! python3 -c 'import jsonschema, yaml' >/dev/null 2>&1; then
  echo "setup: installing python3 modules jsonschema, pyyaml" >&2
  python3 -m pip install --quiet jsonschema pyyaml >/dev/null 2>&1 \
    || { $sudo apt-get install -y -qq --no-install-recommends python3-jsonschema python3-yaml >/dev/null; }
fi
# Debian's packages may start daemons where an init system exists; shakedown starts its own.
command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v redis-server >/dev/null \
  && command -v kubectl >/dev/null
echo "setup: ok (prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), $(redis-server --version | awk '{print $3}'))" >&2
