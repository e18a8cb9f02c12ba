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

failed=()
start=$SECONDS
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT
for t in "${targets[@]}"; do
  pkg="${t% *}"
  name="${t#* }"
  echo "=== ${pkg} ${name}"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}"; then
    failed+=("${pkg} ${name}")
  fi
done
echo "fuzz-ci: ${#targets[@]} targets in $((SECONDS - start)) s"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-ci: FAILED:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "fuzz-ci: failing inputs (commit them with the fix; they become regression tests):" >&2
  find . -path '*/testdata/fuzz/*' -type f -newer "$marker" -print >&2
  exit 1
fi
