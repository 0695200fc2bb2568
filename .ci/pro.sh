# Sourced by .ci/run after .ci/docker.sh: build the image of the real SWE-Bench-Pro instance in
# ../shared/fixtures/swe-bench-pro, offline as its Dockerfiles describe (debootstrap, the Debian
# mirror, PyPI, the fixture's git bundle), tagged jefzda/sweap-images:<dockerhub_tag>. A present
# image with the same inputs digest is reused, so a warm machine spends a second here.

cb_pro_setup() {
    local root fixture started
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    fixture="$root/../shared/fixtures/swe-bench-pro"
    if [ ! -f "$fixture/rows.jsonl" ]; then
        echo "ci/pro: no SWE-Bench-Pro fixture at $fixture" >&2
        return 1
    fi
    started=$(date +%s)
    echo "ci/pro: candlebench build-pro-image $fixture"
    "$root/.venv/bin/candlebench" build-pro-image "$fixture" || return 1
    echo "ci/pro: SWE-Bench-Pro image ready after $(( $(date +%s) - started ))s"
}

cb_pro_setup || { echo "ci/pro: building the SWE-Bench-Pro image failed" >&2; return 1 2>/dev/null || exit 1; }
