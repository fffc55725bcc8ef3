#!/usr/bin/env bash
# Restores and publishes every program into out/ (Controller, Sbxd, SbxFuse, SbxProxy, CLI, agent bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${HIVE_OUT:-$PWD/out}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

echo "==> build: restore"
dotnet restore Hive.sln --nologo -v q

publish() {
  local project=$1 dest=$2
  echo "==> build: publish $project -> ${dest#$PWD/}"
  dotnet publish "$project" -c Release -o "$dest" --no-restore --nologo -v q -p:UseAppHost=true
}
publish Controller/Hive.Controller.csproj "$out/controller"
publish Sbxd/Hive.Sbxd.csproj "$out/sbxd"
publish SbxFuse/Hive.SbxFuse.csproj "$out/sbxfuse"
publish SbxProxy/Hive.SbxProxy.csproj "$out/sbxproxy"
publish Cli/Hive.Cli.csproj "$out/cli"
echo "==> build: agent bundle -> ${out#$PWD/}/agent-bundle"
Agent/bundle.sh "$out/agent-bundle"
echo "==> build: done ($out)"
