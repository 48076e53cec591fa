#!/usr/bin/env bash
# Build the collector distribution described by collector/builder-config.yaml.
#
#   collector/build.sh            -> prints the binary's path as the last stdout line
#
# The binary is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/otel-cli-telemetry/
# otelcol-<first 12 hex of sha256(builder-config.yaml)>/ and the build is skipped when it
# exists. Go's own module and build caches make a rebuild after a manifest change fast.
# Needs: go >= the version the builder declares, and access to the Go module proxy.
# Env: OTELCOL_BUILDER_VERSION overrides the builder version (default: the manifest's core
# version); BUILD_LOG=path keeps the builder's output (default: a file in the cache dir).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

# The cache key covers the manifest and the sources of the local modules it names
# (path: @COLLECTOR_DIR@/<module>), so editing one of them rebuilds.
local_modules="$(sed -n 's#^ *path: *"\{0,1\}@COLLECTOR_DIR@/\([^"]*\)"\{0,1\} *$#\1#p' "$manifest")"
hash="$(
    {
        cat "$manifest"
        for module in $local_modules; do
            (cd "$here" && find "$module" -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) \
                -not -name '*_test.go' | LC_ALL=C sort | xargs sha256sum)
        done
    } | sha256sum | cut -c1-12
)"
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
sed -e "s#^  output_path:.*#  output_path: $work/src#" -e "s#@COLLECTOR_DIR@#$here#g" \
    "$manifest" >"$work/manifest.yaml"
log="${BUILD_LOG:-$out_dir/build.log}"
echo "collector: building $name with ocb $builder_version (log: $log)" >&2
start=$(date +%s)
# GOFLAGS=-e: `go mod tidy` inside ocb also resolves the test-only imports of the
# components' own tests (pkg/golden, otlpencodingextension), which the module proxy used
# here does not serve; -e lets tidy carry on (the distribution never imports them).
# -buildvcs=false: the generated module is not in a VCS checkout.
if ! GOFLAGS="${GOFLAGS:-} -e -buildvcs=false" CGO_ENABLED=0 \
    "$builder" --config "$work/manifest.yaml" >"$log" 2>&1; then
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
