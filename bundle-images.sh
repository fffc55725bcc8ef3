#!/usr/bin/env bash
# Builds every image under images/*/build.sh into the image cache (idempotent; each image is
# rebuilt only when its recipe or build script changes).
set -euo pipefail
cd "$(dirname "$0")"
for build in images/*/build.sh; do
  "$build"
done
