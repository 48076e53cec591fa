#!/usr/bin/env bash
# Make the tools the collector tests need present; idempotent, non-interactive, cached.
#
#   prometheus    Debian package (apt-get update only when it is not installed yet); the
#                 Debian service is left stopped: tests run their own on loopback.
#   telemetrygen  go install, pinned to the collector's contrib version
#   jaeger        Jaeger v2 (cmd/jaeger), built from Go modules, pinned (see below)
#
# Go tools land in ${XDG_CACHE_HOME:-$HOME/.cache}/otel-cli-telemetry/tools/<tool>-<version>/
# and are skipped when present. The last stdout lines are "name=path" for each tool.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin"
export DEBIAN_FRONTEND=noninteractive
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/otel-cli-telemetry"
tools="$cache_root/tools"
mkdir -p "$tools"

TELEMETRYGEN_VERSION="${TELEMETRYGEN_VERSION:-v0.155.0}"
# Jaeger's module path is github.com/jaegertracing/jaeger (no /v2), so its v2.x tags cannot
# be named in `go install`; a commit pseudo-version can, but the module proxy this project
# builds from refuses to resolve commits (403), and serves only the v1.x tags. v1.76.0 is the
# last of them: the same commit as Jaeger v2.13.0, whose cmd/jaeger IS the v2 binary. Its
# go.mod has a replace directive (Shopify/sarama), which `go install pkg@version` refuses,
# so the binary is built from a throw-away wrapper module that requires it and repeats the
# replace.
JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"

log() { echo "install-test-tools: $*" >&2; }

# Move a freshly built tool dir into place unless a concurrent run got there first.
install_dir() {
    local from="$1" to="$2" exe="$3"
    if [[ -x "$to/$exe" ]]; then
        rm -rf "$from"
    else
        rm -rf "$to"
        mv "$from" "$to"
    fi
}

# --- Prometheus (Debian) ---------------------------------------------------------------
if ! command -v prometheus >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]]; then sudo=(); else sudo=(sudo -n); fi
    log "installing prometheus from Debian"
    "${sudo[@]}" apt-get update -qq >&2
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus >&2
    # Do not leave the packaged service running (policy-rc.d usually prevents the start).
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        "${sudo[@]}" systemctl disable --now prometheus >&2 2>/dev/null || true
    elif [[ -x /etc/init.d/prometheus ]]; then
        "${sudo[@]}" /etc/init.d/prometheus stop >&2 2>/dev/null || true
    fi
fi
prometheus_bin="$(command -v prometheus)"

# --- telemetrygen ------------------------------------------------------------------------
tg_dir="$tools/telemetrygen-$TELEMETRYGEN_VERSION"
if [[ ! -x "$tg_dir/telemetrygen" ]]; then
    log "go install telemetrygen@$TELEMETRYGEN_VERSION"
    tmp_dir="$(mktemp -d "$tools/.telemetrygen.XXXXXX")"
    GOFLAGS="-buildvcs=false" GOBIN="$tmp_dir" CGO_ENABLED=0 go install \
        "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$TELEMETRYGEN_VERSION" >&2
    install_dir "$tmp_dir" "$tg_dir" telemetrygen
fi

# --- Jaeger v2 ---------------------------------------------------------------------------
jg_dir="$tools/jaeger-$JAEGER_VERSION"
if [[ ! -x "$jg_dir/jaeger" ]]; then
    log "building github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/out"
    (
        cd "$work"
        export GOFLAGS="-buildvcs=false -mod=mod"
        go mod init jaeger-build >/dev/null 2>&1
        go mod edit -go=1.25 \
            -require="github.com/jaegertracing/jaeger@$JAEGER_VERSION" \
            -replace=github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
        # Jaeger's own go.sum pins every module of its build; start from it so the build
        # verifies against it (the checksum database is not reachable for all of them here).
        go mod download "github.com/jaegertracing/jaeger@$JAEGER_VERSION"
        cp "$(go env GOMODCACHE)/github.com/jaegertracing/jaeger@$JAEGER_VERSION/go.sum" go.sum
        chmod u+w go.sum
        CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/out/jaeger" \
            github.com/jaegertracing/jaeger/cmd/jaeger >&2
    )
    install_dir "$work/out" "$jg_dir" jaeger
fi

echo "prometheus=$prometheus_bin"
echo "telemetrygen=$tg_dir/telemetrygen"
echo "jaeger=$jg_dir/jaeger"
