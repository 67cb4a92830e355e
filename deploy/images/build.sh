#!/usr/bin/env bash
# Build the daemon and console images with podman, from a Debian base made here.
#
#   deploy/images/build.sh [daemon|console|all]      (default: all)
#
# Base: base images cannot be pulled on this kind of machine, so the base is a Debian
# bookworm rootfs of only the Essential packages plus python3 (no apt, no perl beyond
# perl-base, no docs or locales: about 90 MB), made by mmdebstrap and imported into podman as
# localhost/raftops-base:bookworm. The tarball is cached in $IMAGE_CACHE (var/images/)
# under a name that changes with its package list, so it is made once (~30-60 s).
# Elsewhere, skip all that and build the same Containerfiles from a public base:
#   BASE=docker.io/library/python:3.11-slim-bookworm deploy/images/build.sh
# (any bookworm with python3 3.11 on PATH; the dependencies are the host's cp311 wheels).
#
# Dependencies come from the lock (constraints.txt), installed on the host with pip
# --target into the build context and copied in: no pip, compiler or network inside.
#
# Environment: IMAGE_TAG (default "local"), BASE, IMAGE_CACHE, PYTHON (a Python 3.11
# with pip; default .venv/bin/python).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WHAT=${1:-all}
TAG=${IMAGE_TAG:-local}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
CACHE=${IMAGE_CACHE:-$ROOT/var/images}
BASE_PACKAGES=python3
BASE_NAME=localhost/raftops-base:bookworm
# This sandbox refuses crun, systemd cgroups and the default ulimits (ARCHITECTURE.md).
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# The daemon's runtime dependencies (pyproject.toml, "# daemon"); versions from the lock.
DAEMON_REQUIREMENTS=(pysyncobj cryptography starlette uvicorn httptools httpx aiohttp prometheus-client)

case "$WHAT" in
    daemon | console | all) ;;
    *)
        echo "usage: $0 [daemon|console|all]" >&2
        exit 2
        ;;
esac

log() { printf 'build: %s\n' "$*" >&2; }

make_base() {
    # minbase with python3 is 216 MB; the daemon must stay under 150 MB. So: Essential
    # packages only (no apt), no Recommends, the merged-/usr hook instead of the
    # usrmerge package (which drags in all of perl), and no docs, man pages, locales or
    # iconv modules (Python has its own codecs).
    local key
    key=$(printf '%s\n' bookworm essential "$BASE_PACKAGES" slim-v1 | sha256sum | cut -c1-12)
    local tarball=$CACHE/rootfs-bookworm-$key.tar
    if ! podman image exists "$BASE_NAME-$key"; then
        if [ ! -s "$tarball" ]; then
            mkdir -p "$CACHE"
            log "making the Debian base rootfs with mmdebstrap (cached in $tarball)"
            # The partial file must end in .tar: mmdebstrap picks the format from the name.
            local partial=$CACHE/partial-$key.tar
            if ! mmdebstrap --quiet --variant=essential --include="$BASE_PACKAGES" \
                --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
                --aptopt='APT::Install-Recommends "false"' \
                --dpkgopt='path-exclude=/usr/share/doc/*' \
                --dpkgopt='path-include=/usr/share/doc/*/copyright' \
                --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/info/*' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*' \
                bookworm "$partial" >"$CACHE/mmdebstrap.log" 2>&1; then
                tail -20 "$CACHE/mmdebstrap.log" >&2
                rm -f "$partial"
                exit 1
            fi
            mv "$partial" "$tarball"
        fi
        log "importing $tarball as $BASE_NAME-$key"
        podman import --quiet "$tarball" "$BASE_NAME-$key" >/dev/null
    fi
    podman tag "$BASE_NAME-$key" "$BASE_NAME"
}

# pip --target from the lock, without scripts (their shebangs would name the host's
# Python) or caches.
site_packages() {
    local target=$1
    shift
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile \
        --prefer-binary --target "$target" -c "$ROOT/constraints.txt" "$@"
    rm -rf "${target:?}/bin"
    find "$target" -name __pycache__ -type d -prune -exec rm -rf {} +
    # Reproducible from the lock: every distribution installed must be pinned there, at
    # that version (a new transitive dependency would otherwise float).
    "$PYTHON" - "$target" "$ROOT/constraints.txt" <<'CHECK'
import pathlib, re, sys
site, lock = sys.argv[1:]
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
pinned = dict(
    (norm(line.split("==")[0]), line.split("==")[1].strip())
    for line in open(lock) if "==" in line and not line.startswith("#")
)
loose = [
    info.name[: -len(".dist-info")]
    for info in pathlib.Path(site).glob("*.dist-info")
    if pinned.get(norm(info.name[: -len(".dist-info")].rsplit("-", 1)[0]))
    != info.name[: -len(".dist-info")].rsplit("-", 1)[1]
]
if loose:
    sys.exit("build: not pinned in constraints.txt: " + ", ".join(sorted(loose)))
CHECK
}

build() {
    local name=$1 context=$2
    local started=$SECONDS
    "${PODMAN[@]}" build --quiet "${ULIMITS[@]}" --build-arg "BASE=${BASE:-$BASE_NAME}" \
        -t "unrdf-$name:$TAG" -f "$ROOT/deploy/images/$name/Containerfile" "$context" >/dev/null
    local size
    size=$(podman image inspect --format '{{.Size}}' "unrdf-$name:$TAG")
    log "unrdf-$name:$TAG built in $((SECONDS - started)) s, $((size / 1000000)) MB"
}

build_daemon() {
    local ctx=$1/daemon
    mkdir -p "$ctx/app"
    site_packages "$ctx/site" "${DAEMON_REQUIREMENTS[@]}"
    (cd "$ROOT" && git ls-files -z daemon | grep -zv '^daemon/.*\.md$' | xargs -0 cp --parents -t "$ctx/app")
    cp "$ROOT/deploy/images/daemon/entrypoint.py" "$ctx/"
    build daemon "$ctx"
}

build_console() {
    local ctx=$1/console
    mkdir -p "$ctx/app"
    # pyproject.toml's dependencies (not its test extras), at the lock's versions; the
    # project itself is copied as source below, so no wheel of it is built.
    local requirements
    mapfile -t requirements < <("$PYTHON" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$ROOT/pyproject.toml")
    site_packages "$ctx/site" "${requirements[@]}"
    (cd "$ROOT" && git ls-files -z manage.py console daemon templates static | xargs -0 cp --parents -t "$ctx/app")
    build console "$ctx"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${BASE:-}" ]; then
    make_base
fi
if [ "$WHAT" = daemon ] || [ "$WHAT" = all ]; then build_daemon "$work"; fi
if [ "$WHAT" = console ] || [ "$WHAT" = all ]; then build_console "$work"; fi
