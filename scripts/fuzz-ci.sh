#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a bounded time each (CI's fuzzing step).
#
#   scripts/fuzz-ci.sh                 every target of ./..., FUZZTIME (default 10s) each
#   FUZZTIME=30s scripts/fuzz-ci.sh ./store/ ./api/
#
# The targets are found with `go test -list '^Fuzz'`, so a new FuzzXxx runs without editing
# this script. Each target first runs its committed corpus (testdata/fuzz/FuzzXxx/ of its
# package) and seeds, then fuzzes for FUZZTIME. An input that fails is written by `go test` to
# testdata/fuzz/FuzzXxx/ of the package: commit it with the fix, and it stays a regression test
# that every plain `go test` runs. With ~20 targets at 10 s the run takes about 5 minutes.
# A run cut short by Go's own -fuzztime race (see deadline_flake) is run once more; a second
# such run is reported but does not fail, as it found nothing (scripts/fuzzci_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-10s}"
if [ "$#" -gt 0 ]; then pkgs=("$@"); else pkgs=(./...); fi

# `go test -list` prints a package's matching names, then "ok <package> <time>".
listing="$(go test -list '^Fuzz' "${pkgs[@]}")"
targets=()
pending=()
while IFS= read -r line; do
  case "$line" in
    Fuzz*) pending+=("$line") ;;
    ok*)
      pkg="$(awk '{print $2}' <<<"$line")"
      for f in ${pending[@]+"${pending[@]}"}; do targets+=("$pkg $f"); done
      pending=()
      ;;
  esac
done <<<"$listing"

if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz-ci: no fuzz targets found in ${pkgs[*]}" >&2
  exit 1
fi
echo "fuzz-ci: ${#targets[@]} targets, ${fuzztime} each"

# deadline_flake LOG NAME MARKER: true when a failed run is only Go's -fuzztime shutdown race
# (golang/go#51484, #75804): on a loaded machine a worker still busy when the fuzz time ends
# makes the run fail with a bare "context deadline exceeded". A real finding never looks like
# that: `go test` writes its input to testdata/fuzz/NAME/ and says "Failing input written to",
# and a failing check or panic prints its own lines. So a failure counts as the race only when
# the FAIL block holds nothing but that line and no input of NAME is newer than MARKER.
deadline_flake() {
  local log="$1" name="$2" marker="$3"
  grep -q 'Failing input written to' "$log" && return 1
  [ -n "$(find . -path "*/testdata/fuzz/${name}/*" -type f -newer "$marker" -print -quit)" ] && return 1
  # The lines between "--- FAIL: NAME (...)" and the closing "FAIL", blanks dropped.
  local block
  block="$(awk -v head="--- FAIL: ${name} (" '
    index($0, head) == 1 { inblock = 1; next }
    inblock && $0 == "FAIL" { exit }
    inblock && NF { sub(/^[ \t]+/, ""); print }
  ' "$log")"
  [ "$block" = "context deadline exceeded" ]
}

failed=()
flaked=()
start=$SECONDS
marker="$(mktemp)"
log="$(mktemp)"
since="$(mktemp)" # touched before each run: what the run wrote is newer
trap 'rm -f "$marker" "$log" "$since"' EXIT
for t in "${targets[@]}"; do
  pkg="${t% *}"
  name="${t#* }"
  for attempt in 1 2; do
    echo "=== ${pkg} ${name}$([ "$attempt" -gt 1 ] && echo " (again: the last run hit the -fuzztime race)")"
    touch "$since"
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}" 2>&1 | tee "$log"; then
      break
    fi
    if ! deadline_flake "$log" "$name" "$since"; then
      failed+=("${pkg} ${name}")
      break
    fi
    if [ "$attempt" -eq 2 ]; then
      echo "fuzz-ci: ${name}: both runs ended in the -fuzztime race and found nothing; not a failure" >&2
      flaked+=("${pkg} ${name}")
    fi
  done
done
echo "fuzz-ci: ${#targets[@]} targets in $((SECONDS - start)) s (${#failed[@]} failed, ${#flaked[@]} cut short twice by the -fuzztime race)"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-ci: FAILED:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "fuzz-ci: failing inputs (commit them with the fix; they become regression tests):" >&2
  find . -path '*/testdata/fuzz/*' -type f -newer "$marker" -print >&2
  exit 1
fi
