#!/usr/bin/env bash
# Every C++ file git knows is formatted as .clang-format says (clang-format from Debian). Prints the first
# differences of each offending file. usage: format_check.sh SOURCE_DIR
set -uo pipefail
cd "$1" || exit 1
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed (scripts/install-deps.sh installs it)"; exit 77; }
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.h')
[[ ${#files[@]} -gt 0 ]] || { echo "FAIL: no C++ files found"; exit 1; }
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f"; clang-format "$f" | diff "$f" - | head -8; bad=$((bad + 1))
  fi
done
[[ $bad -eq 0 ]] || { echo "FAIL: $bad of ${#files[@]} files differ from .clang-format (run: clang-format -i FILE)"; exit 1; }
echo "OK: ${#files[@]} files formatted"
