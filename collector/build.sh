#!/usr/bin/env bash
# Build the collector distribution described by collector/builder-config.yaml.
#
#   collector/build.sh            -> prints the binary's path as the last stdout line
#
# The binary is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/otel-cli-telemetry/
# otelcol-<first 12 hex of the key>/ and the build is skipped when it exists. The key hashes
# the manifest and every source file of the local modules (collector/normalizer and
# collector/ingestguard; tests and test data aside), so editing either rebuilds. Go's own
# module and build caches make a rebuild fast.
# Needs: go >= the version the builder declares, and access to the Go module proxy.
# Env: OTELCOL_BUILDER_VERSION overrides the builder version (default: the manifest's core
# version); BUILD_LOG=path keeps the builder's output (default: a file in the cache dir).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

normalizer="$here/normalizer"
ingestguard="$here/ingestguard"
# Source files only: a fuzz corpus or test vector change does not rebuild the binary.
hash="$( { sha256sum "$manifest"
          for module in "$normalizer" "$ingestguard"; do
              (cd "$module" && find . -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) \
                  -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
          done; } | sha256sum | cut -c1-12)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/otel-cli-telemetry"
out_dir="$cache_root/otelcol-$hash"
name="$(sed -n 's/^  name: *//p' "$manifest" | head -n1)"
binary="$out_dir/$name"

if [[ -x "$binary" ]]; then
    echo "collector: cached $binary" >&2
    echo "$binary"
    exit 0
fi

# The builder's version follows the core version of the manifest (ocb refuses mismatches).
core_version="$(sed -n 's#.*go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*#\1#p' "$manifest" | head -n1)"
builder_version="${OTELCOL_BUILDER_VERSION:-$core_version}"
tools_dir="$cache_root/tools/builder-$builder_version"
builder="$tools_dir/builder"
if [[ ! -x "$builder" ]]; then
    echo "collector: installing go.opentelemetry.io/collector/cmd/builder@$builder_version" >&2
    mkdir -p "$tools_dir"
    GOBIN="$tools_dir" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version" >&2
fi

mkdir -p "$out_dir"
work="$(mktemp -d "$out_dir/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# A copy of the manifest whose output goes into the work dir; the result is moved into
# place only when the build succeeded, so a half-built binary is never taken as cached.
# The local modules' paths must be absolute (ocb resolves a relative one against its own
# working directory): substitute this checkout's.
sed -e "s#^  output_path:.*#  output_path: $work/src#" -e "s#__NORMALIZER_PATH__#$normalizer#" \
    -e "s#__INGESTGUARD_PATH__#$ingestguard#" \
    "$manifest" >"$work/manifest.yaml"
log="${BUILD_LOG:-$out_dir/build.log}"
echo "collector: building $name with ocb $builder_version (log: $log)" >&2
start=$(date +%s)
# GOFLAGS=-e: `go mod tidy` inside ocb also resolves the test-only imports of the
# components' own tests (pkg/golden, otlpencodingextension), which the module proxy used
# here does not serve; -e lets tidy carry on (the distribution never imports them).
# -buildvcs=false: the generated module is not in a VCS checkout.
if ! GOFLAGS="${GOFLAGS:-} -e -buildvcs=false" CGO_ENABLED=0 \
    "$builder" --skip-strict-versioning=false --config "$work/manifest.yaml" >"$log" 2>&1; then
    echo "collector: build FAILED; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
# Atomic: a concurrent build.sh (or a test reading the path) never sees a partial file.
mv "$work/src/$name" "$out_dir/.$name.$$"
mv -f "$out_dir/.$name.$$" "$binary"
cp "$manifest" "$out_dir/builder-config.yaml"
echo "collector: built in $(($(date +%s) - start)) s" >&2
echo "$binary"
