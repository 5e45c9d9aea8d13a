#!/usr/bin/env bash
# `make audit`: static security analysis of our code (bandit) and known vulnerabilities in the installed
# dependencies (pip-audit). Exits non-zero on any bandit finding and on any known vulnerability.
#
# bandit reads [tool.bandit] in pyproject.toml (skipped checks, each with why). A finding is fixed or carries
# `# nosec BXXX` on its line after the reason. scripts/bandit-baseline.json lists findings reviewed in code
# another team owns; they are counted per file, check and message (not by line, which moves), and any
# finding beyond those counts fails the audit:
#   - analytics/{engine,extract,sql}.py B608: DuckDB SQL assembled from constants, integer day numbers and
#     internal table/column names (see the ruff S608 exemption at the top of analytics/sql.py); no request
#     value is ever formatted into it;
#   - web/qr.py, web/rendering.py B704: Markup over segno's SVG (it XML-escapes what it encodes) and over JSON
#     escaped for a <script> context just above the call.
# (bandit's own --baseline would not do: it lets any number of new findings through once one of the same
# kind is listed for the file.)
#
# pip-audit needs vulnerability data from the network (PyPI's JSON API, or OSV with
# PATRONAGE_AUDIT_SERVICE=osv). Where it cannot be fetched (an offline runner, a mirror without the JSON
# API), every package comes back "could not be audited" and pip-audit itself would still say "No known
# vulnerabilities found". This script counts what was really audited and says so: nothing audited is
# reported as NOT RUN and does not fail the build unless PATRONAGE_AUDIT_REQUIRE_NETWORK=1; a vulnerability
# in any package that was audited always fails it.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
SERVICE="${PATRONAGE_AUDIT_SERVICE:-pypi}"

# Vulnerabilities we accept, one --ignore-vuln per line, each with why (none at present):
#   --ignore-vuln GHSA-xxxx-xxxx-xxxx   # <package>: <why it does not affect Patronage>, <until when>
IGNORED_VULNS=()

status=0

echo "== bandit (src/)"
report="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$report" "$log"' EXIT
"$BIN/bandit" -q -r src -c pyproject.toml -f json -o "$report" 2>"$log"
"$BIN/python" - "$report" scripts/bandit-baseline.json "$log" <<'PY' || status=1
import json
import sys
from collections import Counter

report, baseline, log = sys.argv[1:4]


def kind(issue):
    return (issue["filename"], issue["test_id"], issue["issue_severity"], issue["issue_confidence"],
            issue["issue_text"])


try:
    with open(report) as f:
        found = json.load(f)
except (OSError, ValueError):
    with open(log) as f:
        print(f.read().rstrip())
    print("bandit: did not produce a report (above)")
    sys.exit(1)
with open(baseline) as f:
    allowed = Counter(kind(issue) for issue in json.load(f)["results"])
if found["errors"]:
    for error in found["errors"]:
        print(f"  {error['filename']}: {error['reason']}")
    print("bandit: could not scan every file (above)")
    sys.exit(1)
new = []
for issue in sorted(found["results"], key=lambda i: (i["filename"], i["line_number"])):
    if allowed[kind(issue)] > 0:
        allowed[kind(issue)] -= 1
    else:
        new.append(issue)
for issue in new:
    print(f"  {issue['filename']}:{issue['line_number']}: {issue['test_id']} ({issue['issue_severity']}) "
          f"{issue['issue_text']}")
reviewed = len(found["results"]) - len(new)
if new:
    print(f"bandit: {len(new)} issue(s) (above; {reviewed} reviewed in scripts/bandit-baseline.json): fix them, "
          "or state on the line why it is safe and add '# nosec BXXX'")
    sys.exit(1)
print(f"bandit: no issues ({reviewed} reviewed in scripts/bandit-baseline.json)")
PY

echo "== pip-audit (installed dependencies, vulnerability service: $SERVICE)"
"$BIN/pip-audit" --skip-editable --progress-spinner off --vulnerability-service "$SERVICE" \
    --format json --output "$report" "${IGNORED_VULNS[@]}" >"$log" 2>&1
audit=$?
"$BIN/python" - "$report" "$audit" "$log" "${PATRONAGE_AUDIT_REQUIRE_NETWORK:-0}" <<'PY'
import json
import sys
from collections import Counter

report, audit_rc, log, require_network = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
try:
    with open(report) as f:
        dependencies = json.load(f)["dependencies"]
except (OSError, ValueError, KeyError):
    dependencies = None
if dependencies is None:  # pip-audit did not get as far as a report: unreachable service, or a crash
    with open(log) as f:
        print("".join(f.readlines()[-5:]).rstrip())
    print("pip-audit: NOT RUN: no report (above). The dependencies were NOT audited.")
    sys.exit(1 if require_network or audit_rc not in (0, 1) else 0)

audited = [d for d in dependencies if "skip_reason" not in d]
skipped = [d for d in dependencies if "skip_reason" in d]
vulnerable = [d for d in audited if d.get("vulns")]
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixed})")
print(f"pip-audit: {len(audited)} of {len(dependencies)} packages audited, {len(skipped)} not audited, "
      f"{len(vulnerable)} vulnerable")
if skipped:
    reasons = Counter(d["skip_reason"].split(":")[0] for d in skipped)
    for reason, n in reasons.most_common():
        print(f"    not audited ({n}): {reason}")
    print("    e.g. " + ", ".join(d["name"] for d in skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
if vulnerable:
    print("pip-audit: vulnerable dependencies (above): upgrade them, or justify an --ignore-vuln in "
          "scripts/security-audit.sh")
    sys.exit(1)
if not audited:
    print("pip-audit: NOT RUN: the vulnerability data could not be fetched from this machine, so the dependencies "
          "were NOT audited. Run `make audit` where PyPI (or api.osv.dev) is reachable.")
    sys.exit(1 if require_network else 0)
print("pip-audit: no known vulnerabilities in the audited packages")
PY
[ $? -eq 0 ] || status=1
exit "$status"
