# Hive — two commands:
#   make up    install what is missing, build, build the base image, run the Controller on :7070
#   make test  install what is missing, build, build the base image, run every test suite
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

export HIVE_IMAGE_CACHE ?= /var/cache/hive/images
export HIVE_OUT ?= $(CURDIR)/out
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

.PHONY: up test deps build images bench clean help

help:
	@echo "make up     build everything and run the Controller on :7070 (every HIVEBOX_* option honoured: hive daemon --help)"
	@echo "make test   build everything and run all tests; ends with 'N passed, N failed'"
	@echo "make bench  run the benchmarks in bench/ (see docs/BENCHMARKS.md)"

deps:
	@scripts/deps.sh

build: deps
	@scripts/build.sh

images: deps
	@./bundle-images.sh

up: build images
	@echo "==> up: linking hive and hivebox into /usr/local/bin"
	@ln -sf "$(HIVE_OUT)/cli/hive" /usr/local/bin/hive && ln -sf "$(HIVE_OUT)/cli/hive" /usr/local/bin/hivebox
	@echo "==> up: starting the Controller (Ctrl-C stops it; sandboxes keep running and are re-adopted on the next start)"
	@exec "$(HIVE_OUT)/cli/hive" daemon --image-dir "$(HIVE_IMAGE_CACHE)"

test: build images
	@tests/run.sh

bench: build images
	@bench/exec-latency
	@bench/userns-cost
	@bench/fuse
	@bench/events
	@bench/proxy

clean:
	rm -rf out */bin */obj tests/*/bin tests/*/obj
