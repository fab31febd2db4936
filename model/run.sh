#!/usr/bin/env bash
# Model-check the mtcsec key establishment (mtcsec.pml) and the
# Needham-Schroeder sanity model (ns.pml) with SPIN.
#
#   bash model/run.sh [--trails] [config ...]
#
# Every configuration is built in a temporary directory (spin -a, cc pan.c)
# and searched exhaustively. A configuration marked "pass" must end with
# "errors: 0"; one marked "fail" (mutations, NS, vacuity witnesses) must
# report errors, leave a .trail, and that trail, replayed with spin -t, must
# violate the named assertion. --trails prints the message sequence of every
# counterexample. Exit status: 0 all as expected, 1 otherwise, 77 no spin.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
show_trails=0
if [ "${1:-}" = "--trails" ]; then
  show_trails=1
  shift
fi

if ! command -v spin >/dev/null 2>&1; then
  echo "run.sh: spin is not installed (apt-get install spin); skipping" >&2
  exit 77
fi
cc=${CC:-cc}
depth_limit=100000

# name | model | spin -D flags | expect: pass, fail (shortest counterexample,
# pan -i) or fail-any (first counterexample) | assertion that must fail
configs=(
  "ns|ns.pml||fail|auth_a_to_b"
  "nsl|ns.pml|-DNSL|pass|"
  "nsl-witness|ns.pml|-DNSL -DWITNESS|fail-any|honest_run_unreachable"
  "real-direct|mtcsec.pml||pass|"
  "real-relayed|mtcsec.pml|-DRELAYED|pass|"
  "witness-direct|mtcsec.pml|-DWITNESS|fail-any|full_run_unreachable"
  "witness-relayed|mtcsec.pml|-DWITNESS -DRELAYED|fail-any|full_run_unreachable"
  "mut-no-ueid-check|mtcsec.pml|-DNO_UEID_CHECK -DCHECK_A|fail|prop_a_secrecy"
  "mut-no-window|mtcsec.pml|-DNO_WINDOW -DCHECK_C|fail|prop_c_origin"
  "mut-no-nd-in-mic|mtcsec.pml|-DNO_ND_IN_MIC -DCHECK_B|fail|prop_b_agreement"
  "mut-no-ueid-check-relayed|mtcsec.pml|-DRELAYED -DNO_UEID_CHECK -DCHECK_A|fail|prop_a_secrecy"
  "mut-no-window-relayed|mtcsec.pml|-DRELAYED -DNO_WINDOW -DCHECK_C|fail|prop_c_origin"
  "mut-no-nd-in-mic-relayed|mtcsec.pml|-DRELAYED -DNO_ND_IN_MIC -DCHECK_B|fail|prop_b_agreement"
)

build=$(mktemp -d "${TMPDIR:-/tmp}/mtcsec-model.XXXXXX")
trap 'rm -rf "$build"' EXIT

passed=0
failed=0
start=$SECONDS

# field REGEX FILE: the number captured by \(...\) in the last line that
# REGEX matches in full, or "?"
field() {
  local v
  v=$(sed -n "s/^$1\$/\1/p" "$2" 2>/dev/null | tail -n 1 || true)
  echo "${v:-?}"
}

run_config() {
  local name=$1 model=$2 defs=$3 expect=$4 want=$5
  local dir="$build/$name" verdict="" why=""
  mkdir -p "$dir"
  cp "$here/$model" "$dir/"
  (
    cd "$dir"
    # shellcheck disable=SC2086  # defs is a list of flags
    spin $defs -a "$model" >spin.log 2>&1 || exit 1
    if [ "$expect" = fail ]; then
      # -DREACH and -i: keep searching for the shortest counterexample
      "$cc" -O2 -w -DMEMLIM=4000 -DREACH -o pan pan.c >cc.log 2>&1 || exit 1
      ./pan -m"$depth_limit" -i >pan.out 2>&1 || true
    else   # pass, fail-any
      "$cc" -O2 -w -DMEMLIM=4000 -o pan pan.c >cc.log 2>&1 || exit 1
      ./pan -m"$depth_limit" >pan.out 2>&1 || true
    fi
  ) || {
    echo "FAIL model $name: build failed ($(tail -n 1 "$dir"/*.log))"
    failed=$((failed + 1))
    return
  }

  local out="$dir/pan.out"
  local errors states depth time
  errors=$(field '.*errors: \([0-9]*\).*' "$out")
  states=$(field ' *\([0-9][0-9.e+]*\) states, stored.*' "$out")
  depth=$(field '.*depth reached \([0-9]*\),.*' "$out")
  time=$(field '.*elapsed time \([0-9.e+]*\) seconds.*' "$out")
  local figures="states=$states, depth=$depth, time=${time}s"

  if grep -q "depth too small" "$out"; then
    verdict=FAIL why="search depth too small (-m$depth_limit)"
  elif grep -Eqi "out of memory|MEMLIM" "$out"; then
    verdict=FAIL why="out of memory (-DMEMLIM=4000)"
  elif [ "$errors" = "?" ]; then
    verdict=FAIL why="no verdict from pan"
  elif [ "$expect" = pass ]; then
    if [ "$errors" = 0 ]; then
      verdict=PASS why="0 errors"
    else
      verdict=FAIL why="$errors errors: $(grep -m1 -E 'violated|invalid end' "$out")"
    fi
  else
    local trail="$dir/$model.trail"
    if [ "$errors" = 0 ]; then
      verdict=FAIL why="0 errors, a counterexample was required"
    elif [ ! -s "$trail" ]; then
      verdict=FAIL why="$errors errors but no trail"
    else
      # replay the trail: it must violate the assertion this config targets
      # shellcheck disable=SC2086
      (cd "$dir" && spin $defs -t "$model" >replay.out 2>&1) || true
      local steps
      steps=$(field '.*trail ends after \([0-9]*\) steps.*' "$dir/replay.out")
      if grep -q "text of failed assertion: assert($want)" "$dir/replay.out"; then
        verdict=PASS why="counterexample as required: $want violated, trail of $steps steps replayed"
      else
        verdict=FAIL why="trail does not violate $want: $(grep -m1 'failed assertion' "$dir/replay.out" || echo none)"
      fi
    fi
  fi
  echo "$verdict model $name: $why, $figures"
  if [ "$show_trails" = 1 ] && [ -f "$dir/replay.out" ]; then
    grep "MSC:" "$dir/replay.out" | sed 's/^ *MSC:/    /' || true
  fi
  if [ "$verdict" = PASS ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

for c in "${configs[@]}"; do
  IFS='|' read -r name model defs expect want <<<"$c"
  if [ $# -gt 0 ]; then
    case " $* " in *" $name "*) ;; *) continue ;; esac
  fi
  run_config "$name" "$model" "$defs" "$expect" "$want"
done

echo "total wall time $((SECONDS - start))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
