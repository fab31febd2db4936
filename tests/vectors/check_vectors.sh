#!/usr/bin/env bash
# Feeds each committed vector's inputs to mtcsec-vectors and requires every
# output field to equal the committed one (PROTOCOL.md section 8).  Also
# checks that bad input is refused with a message and a non-zero status.
set -euo pipefail
prog=$1
dir=$2
fails=0
n=0
for f in "$dir"/*.json; do
  n=$((n + 1))
  if ! python3 - "$prog" "$f" <<'PY'
import json, subprocess, sys
prog, path = sys.argv[1], sys.argv[2]
want = json.load(open(path))
inp = {"suite": want["suite"], "inputs": want["inputs"]}
p = subprocess.run([prog], input=json.dumps(inp).encode(), capture_output=True)
if p.returncode != 0:
    sys.exit(f"{path}: exit {p.returncode}: {p.stderr.decode()}")
got = json.loads(p.stdout)
bad = [k for k in want["outputs"] if got["outputs"].get(k) != want["outputs"][k]]
extra = set(got["outputs"]) - set(want["outputs"])
if bad or extra or got["inputs"] != want["inputs"] or got["suite"] != want["suite"]:
    sys.exit(f"{path}: differs in {bad} extra {sorted(extra)}")
print(f"ok {path.split('/')[-1]}")
PY
  then
    fails=$((fails + 1))
  fi
done
[ "$n" -gt 0 ] || { echo "no vectors in $dir"; exit 1; }

# Bad inputs: each must fail with status 1 and a message on stderr.
bad_inputs=(
  'not json'
  '{"suite": 4, "inputs": {}}'
  '{"suite": 1}'
  '{"suite": 1, "inputs": {"MTCdID": "zz"}}'
)
for b in "${bad_inputs[@]}"; do
  set +e
  err=$(printf '%s' "$b" | "$prog" 2>&1 >/dev/null)
  st=$?
  set -e
  if [ "$st" -ne 1 ] || [ -z "$err" ]; then
    echo "bad input not refused properly (status $st): $b"
    fails=$((fails + 1))
  fi
done
# A relayed run whose MTCdInfo lacks the PATH is refused.
python3 - "$prog" "$dir/suite1-relayed.json" <<'PY' || fails=$((fails + 1))
import json, subprocess, sys
v = json.load(open(sys.argv[2]))
v["inputs"]["MTCdInfo"] = "040103"
del v["outputs"]
p = subprocess.run([sys.argv[1]], input=json.dumps(v).encode(), capture_output=True)
sys.exit(0 if p.returncode == 1 and b"PATH" in p.stderr else "PATH mismatch accepted")
PY
echo "$n vectors checked, $fails failures"
[ "$fails" -eq 0 ]
