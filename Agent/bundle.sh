#!/usr/bin/env bash
# Builds the hive-agent bundle: a directory bind-mounted read-only at /.hive in every sandbox.
# It must run in any image whatever its libc (or none), so it carries everything it needs:
#   agent/hive-agent   the agent (framework-dependent publish; ELF interpreter -> /.hive/lib/ld-linux-x86-64.so.2)
#   dotnet/            the .NET runtime it runs on (copied from the host's SDK install)
#   lib/               the host's glibc loader and the shared libraries the runtime needs; the loader
#                      and libc are rewritten to read nothing from the sandbox's tree (confine-libs.py)
#   bin/busybox        a static busybox (debugging aid in images without tools)
#   agent.env          KEY=VALUE lines Sbxd adds to the agent's environment (the agent strips them from commands)
# NativeAOT and self-contained runtime packs are not available here, hence the copied runtime.
# Usage: Agent/bundle.sh OUT_DIR
set -euo pipefail
out=${1:?usage: Agent/bundle.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

for tool in patchelf busybox; do
  if ! command -v "$tool" >/dev/null; then
    echo "==> agent bundle: installing ${tool/busybox/busybox-static}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool/busybox/busybox-static}" >/dev/null
  fi
done

dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/10.* | sort -V | tail -1)
aspnet=$(ls -d "$dotnet_root"/shared/Microsoft.AspNetCore.App/10.* | sort -V | tail -1)
fxr=$(ls -d "$dotnet_root"/host/fxr/10.* | sort -V | tail -1)

staging=$(mktemp -d "$out.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT

echo "==> agent bundle: publish hive-agent"
dotnet publish "$here/Hive.Agent.csproj" -c Release -o "$staging/agent" --nologo -v q -p:UseAppHost=true -p:DebugType=none >/dev/null
rm -f "$staging"/agent/*.pdb

echo "==> agent bundle: runtime $(basename "$runtime") from $dotnet_root"
mkdir -p "$staging/dotnet/shared/Microsoft.NETCore.App" "$staging/dotnet/shared/Microsoft.AspNetCore.App" "$staging/dotnet/host/fxr"
cp -a "$runtime" "$staging/dotnet/shared/Microsoft.NETCore.App/"
cp -a "$aspnet" "$staging/dotnet/shared/Microsoft.AspNetCore.App/"
cp -a "$fxr" "$staging/dotnet/host/fxr/"
# Not needed by the agent: debugger/profiler/diagnostic components. They leave the framework's
# deps.json too: the host checks that every listed file exists whenever a servicing directory is
# configured, and agent.env configures one (see below).
unneeded=(libmscordbi.so libmscordaccore.so createdump libcoreclrtraceptprovider.so)
for dir in "$staging"/dotnet/shared/Microsoft.NETCore.App/*/; do
  (cd "$dir" && rm -f "${unneeded[@]}")
  python3 - "$dir/Microsoft.NETCore.App.deps.json" "${unneeded[@]}" <<'PY'
import json, sys
path, names = sys.argv[1], set(sys.argv[2:])
deps = json.load(open(path))
for target in deps["targets"].values():
    for package in target.values():
        for kind in ("native", "runtime"):
            for name in names & set(package.get(kind, {})):
                del package[kind][name]
json.dump(deps, open(path, "w"), indent=2)
PY
done

echo "==> agent bundle: loader and libraries"
mkdir -p "$staging/lib" "$staging/bin"
libs=$( { ldd "$staging/agent/hive-agent"; for so in "$staging"/dotnet/host/fxr/*/*.so "$staging"/dotnet/shared/*/*/*.so; do ldd "$so" 2>/dev/null || true; done; } \
  | awk '/=> \// { print $3 } /^\s*\/lib/ { print $1 }' | sort -u)
for lib in $libs; do
  cp -L "$lib" "$staging/lib/$(basename "$lib")"
done
# Loaded with dlopen (invisible to ldd) by System.Security.Cryptography, which the MCP server uses:
# OpenSSL, with a configuration of its own (agent.env) instead of the sandbox's /usr/lib/ssl.
for lib in libssl.so.3 libcrypto.so.3; do
  path=$(ldconfig -p | awk -v lib="$lib" '$1 == lib && /x86-64/ { print $NF; exit }')
  if [[ -z "$path" ]]; then
    echo "error: $lib not found on this host (Debian package libssl3)" >&2
    exit 1
  fi
  cp -L "$path" "$staging/lib/$lib"
done
mkdir -p "$staging/ssl" "$staging/empty"
echo "# hive-agent's OpenSSL configuration: the built-in defaults, nothing loaded from elsewhere" > "$staging/ssl/openssl.cnf"
loader=$(ldd "$staging/agent/hive-agent" | awk '/ld-linux/ { print $1 }')
cp -L "$loader" "$staging/lib/ld-linux-x86-64.so.2"
patchelf --set-interpreter /.hive/lib/ld-linux-x86-64.so.2 "$staging/agent/hive-agent"
python3 "$here/confine-libs.py" "$staging/lib"
cp -L "$(command -v busybox)" "$staging/bin/busybox"

# The agent's whole environment (Sbxd passes the commands' environment under a prefix). The loader
# searches /.hive/lib first and nothing outside it (confine-libs.py). Nothing else may be looked up in the
# sandbox's tree: the .NET host's runtime location (/etc/dotnet/install_location without
# DOTNET_ROOT), serviced assemblies (/opt/coreservicing: any existing directory replaces it, a
# missing one does not) and breadcrumbs (/opt/corebreadcrumbs, likewise); OpenSSL's configuration,
# providers and engines (/usr/lib/ssl, /usr/lib/x86_64-linux-gnu/{ossl-modules,engines-3}). The web
# host does not watch its content root; the runtime does not look for its LTTng provider.
cat > "$staging/agent.env" <<ENV
LD_LIBRARY_PATH=/.hive/lib
DOTNET_ROOT=/.hive/dotnet
CORE_SERVICING=/.hive/empty
CORE_BREADCRUMBS=/.hive/empty
OPENSSL_CONF=/.hive/ssl/openssl.cnf
OPENSSL_MODULES=/.hive/empty
OPENSSL_ENGINES=/.hive/empty
DOTNET_hostBuilder__reloadConfigOnChange=false
DOTNET_LTTng=0
HOME=/root
DOTNET_EnableDiagnostics=0
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
DOTNET_gcServer=0
DOTNET_gcConcurrent=0
DOTNET_GCgen0size=0x400000
DOTNET_TieredPGO=0
DOTNET_TC_QuickJitForLoops=1
DOTNET_NOLOGO=1
ENV

chmod -R a+rX,go-w "$staging"
rm -rf "$out.old"
[[ -e "$out" ]] && mv "$out" "$out.old"
mv "$staging" "$out"
trap - EXIT
rm -rf "$out.old"
echo "==> agent bundle: $(du -sh "$out" | cut -f1) at $out"
