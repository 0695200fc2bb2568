# Sourced by .ci/run after .ci/docker.sh: the docker deployment profile's project image
# (`candlebench deploy build-image`: the dependencies image, rebuilt only when pyproject.toml
# changes, and the thin project image on top, both tagged by a digest of their inputs, so a warm
# machine reuses them) and the shared storage its run containers mount (/var/lib/candlebench).
# tests/test_deploy_docker.py runs the daily job in a run container of that image.

cb_docker_profile_setup() {
    local root started exports
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    started=$(date +%s)
    mkdir -p /var/lib/candlebench || return 1
    exports="$("$root/.venv/bin/candlebench" deploy build-image)" || return 1
    eval "$exports"
    echo "ci/docker-profile: $CANDLEBENCH_RUN_IMAGE ready after $(( $(date +%s) - started ))s"
}

cb_docker_profile_setup || { echo "ci/docker-profile: building the project image failed" >&2; return 1 2>/dev/null || exit 1; }
