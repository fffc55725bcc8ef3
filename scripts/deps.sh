#!/usr/bin/env bash
# Installs what a fresh Debian 12 host lacks to build and run Hive. Idempotent: only missing
# packages are installed, and apt metadata is refreshed only when something must be installed.
set -euo pipefail

packages=(
  runc            # OCI runtime for sandbox containers
  fuse3 libfuse3-3 libfuse3-dev  # SbxFuse workspaces
  iptables iproute2              # network namespaces, veth, egress redirection
  mmdebstrap debootstrap         # base image build from the host's apt configuration
  busybox-static  # shipped inside the agent bundle; test images
  patchelf        # points the agent's ELF interpreter at its own loader
  sqlite3 jq curl ca-certificates util-linux bc
  gcc libc6-dev pkg-config  # compiled C layout checks of the libfuse3 binding
  python3         # bench/ scripts
)

missing=()
for p in "${packages[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js may come from another distribution (which bundles npm): only install Debian's if absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if ((${#missing[@]})); then
  echo "==> deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "==> deps: all system packages present"
fi

if ! command -v dotnet >/dev/null; then
  echo "error: the .NET 10 SDK (dotnet) is required but not on PATH" >&2
  exit 1
fi

# The Sbxd uses named network namespaces and cgroups; make sure their mount points exist.
mkdir -p /run/netns
