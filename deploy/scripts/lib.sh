# shellcheck shell=bash
# Shared by the runbook's scripts in this directory: the daemon's HTTP API with curl
# and jq. Local cluster: DAEMON_URL=http://127.0.0.1:8080 (the default). Kubernetes:
#   kubectl -n unrdf-daemons port-forward svc/unrdf-daemon-client 8080:8080 &
# then the same DAEMON_URL; with KUBE_NAMESPACE set, the scripts also show what only
# kubectl can (pods, resource usage, logs, certificates).

DAEMON_URL=${DAEMON_URL:-http://127.0.0.1:8080}
DAEMON_URL=${DAEMON_URL%/}
KUBE_NAMESPACE=${KUBE_NAMESPACE:-}
CURL_TIMEOUT_S=${CURL_TIMEOUT_S:-5}

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "$(basename "$0"): $tool is required (apt-get install $tool)" >&2
            exit 2
        }
    done
}

# api PATH [curl args...]: the JSON body on stdout; a one-line error and status 1 when
# the node cannot be reached or answers an error.
api() {
    local path=$1
    shift
    local auth=()
    if [ -n "${DAEMON_TOKEN:-}" ]; then
        auth=(-H "Authorization: Bearer $DAEMON_TOKEN")
    fi
    local body
    if ! body=$(curl -fsS --max-time "$CURL_TIMEOUT_S" "${auth[@]}" "$@" "$DAEMON_URL$path" 2>&1); then
        echo "cannot get $DAEMON_URL$path: ${body##*curl: }" >&2
        return 1
    fi
    printf '%s\n' "$body"
}

section() { printf '\n=== %s ===\n' "$*"; }

kube() { [ -n "$KUBE_NAMESPACE" ]; }
