#!/usr/bin/env bash
# The architecture, checked (docs/ARCHITECTURE.md): each folder includes only from the layers
# below it, and only agent/sys/ touches a C API (libsystemd, libcurl, libcrypto, posix_spawn)
# or calls symlink()/rename() itself. CMake cannot enforce this (every target sees the project root, and
# a static library's PRIVATE dependencies still reach the final link), so this test does.
# Usage: tests/layers.sh [SOURCE_DIR]   Exit 1 with one line per violation.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# Each layer and what it may include besides itself (bottom up).
# agent/ itself is the top; its sub-folders are the inner layers.
declare -A allowed=(
  [agent/core]=""
  [agent/sys]="agent/core"
  [agent/config]="agent/core agent/sys"
  [agent/detect]="agent/core agent/config"
  [agent/incidents]="agent/core agent/sys agent/config"
  [agent/mitigate]="agent/core agent/config agent/incidents"
  [agent/fleet]="agent/core agent/sys agent/config"
  [notify]="agent/core agent/sys agent/config agent/incidents"
  [actions]="agent/core agent/sys agent/config agent/incidents"
  [probes]="agent/core agent/sys agent/config agent/detect"
  [agent]="agent/core agent/sys agent/config agent/detect agent/incidents agent/mitigate
           agent/fleet notify actions probes"
)
allowed[agent]=$(echo ${allowed[agent]})  # one line

bad=0
violation() {
  echo "layers: $*"
  bad=1
}

for layer in "${!allowed[@]}"; do
  [[ -d "$layer" ]] || violation "$layer/ is missing"
  while IFS=: read -r file line dep; do
    dep=${dep#*\"}
    dep=${dep%/*}                          # the folder of the included header
    [[ -n "${allowed[$dep]+x}" ]] || dep=${dep%%/*}
    [[ "$dep" == "$layer" ]] && continue
    [[ " ${allowed[$layer]} " == *" $dep "* ]] && continue
    violation "$file:$line: $layer/ includes from $dep/ (allowed: ${allowed[$layer]:-nothing})"
  done < <(grep -Hn -E '^#include "[a-z_/]+\.h"' "$layer"/*.h "$layer"/*.cpp 2>/dev/null || true)
done

# C APIs: headers and calls, outside sys/ (comments are not code).
c_api='#include <(systemd/|curl/|openssl/|spawn\.h)|\b(sd_(bus|journal|login|session|get|notify|uid|pid)_?[a-z_]*|curl_[a-z_]+|posix_spawn[a-z_]*|EVP_[A-Za-z_]+|HMAC)\(|(^|[^_[:alnum:].>])(::)?(symlink|rename|renameat2?)\('
for layer in "${!allowed[@]}"; do
  [[ "$layer" == agent/sys ]] && continue
  while IFS=: read -r file line text; do
    [[ "$text" =~ ^[[:space:]]*// ]] && continue
    violation "$file:$line: a C API outside agent/sys/: ${text#"${text%%[![:space:]]*}"}"
  done < <(grep -Hn -E "$c_api" "$layer"/*.h "$layer"/*.cpp 2>/dev/null || true)
done

if ((bad == 0)); then echo "layers: ok (${#allowed[@]} layers)"; fi
exit "$bad"
