#!/usr/bin/env bash
# `make audit`: static security analysis of our code (bandit) and known vulnerabilities in the installed
# dependencies (pip-audit). Exit 0 only when both pass. bandit reads its configuration (skips, each
# justified there) from [tool.bandit] in pyproject.toml.
#
# pip-audit needs vulnerability data from the network (PyPI's JSON API, or OSV with
# PATRONAGE_AUDIT_SERVICE=osv). Where that data cannot be fetched (an offline CI runner, a mirror without
# the JSON API), every package comes back "could not be audited": the script then says so loudly and,
# unless PATRONAGE_AUDIT_REQUIRE_NETWORK=1, does not fail the build for it — but it never reports that
# as a pass of the dependency audit.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
SERVICE="${PATRONAGE_AUDIT_SERVICE:-pypi}"

# Vulnerabilities we accept, one --ignore-vuln per line, each with why (none at present):
#   --ignore-vuln GHSA-xxxx-xxxx-xxxx   # <package>: <why it does not affect Patronage>, <until when>
IGNORED_VULNS=()

status=0

echo "== bandit (src/)"
if "$BIN/bandit" -q -r src -c "${BANDIT_CONFIG:-pyproject.toml}"; then
    echo "bandit: no issues"
else
    echo "bandit: issues found (above)"
    status=1
fi

echo "== pip-audit (installed dependencies, vulnerability service: $SERVICE)"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
"$BIN/pip-audit" --strict --skip-editable --progress-spinner off --vulnerability-service "$SERVICE" \
    "${IGNORED_VULNS[@]}" >"$report" 2>&1
audit=$?
if grep -qE "could not be audited|ConnectionError|Failed to resolve|Max retries exceeded|Read timed out" "$report"; then
    echo "pip-audit: NOT RUN — the vulnerability data ($SERVICE) could not be fetched from this machine:"
    grep -m3 -E "could not be audited|Error" "$report" | sed 's/^/    /'
    echo "    The dependencies were NOT audited. Run \`make audit\` where PyPI (or api.osv.dev) is reachable."
    if [ "${PATRONAGE_AUDIT_REQUIRE_NETWORK:-0}" = "1" ]; then
        status=1
    fi
elif [ "$audit" -ne 0 ]; then
    cat "$report"
    echo "pip-audit: vulnerable dependencies (above): upgrade them, or justify an --ignore-vuln in $0"
    status=1
else
    cat "$report"
    echo "pip-audit: no known vulnerabilities"
fi
exit "$status"
