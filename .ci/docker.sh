# Sourced by .ci/run: make the docker and bubblewrap sandboxes available. Idempotent.
# Installs docker.io, debootstrap and bubblewrap, checks that bwrap can start a sandbox, starts
# dockerd if `docker info` fails, waits up to 60 s, then builds candlebench/demo-python:1
# locally (no registry; skipped when already present).

cb_docker_setup() {
    local root driver i
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"

    if command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 \
        && command -v bwrap >/dev/null 2>&1; then
        echo "ci/docker: docker.io, debootstrap and bubblewrap already installed"
    else
        echo "ci/docker: installing docker.io, debootstrap and bubblewrap"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            docker.io debootstrap bubblewrap >/dev/null || return 1
    fi
    # bubblewrap needs namespaces (user namespaces when not run as root); say so now, not in a test
    if bwrap --unshare-all --ro-bind / / true 2>/tmp/bwrap-check.log \
        || bwrap --unshare-all --unshare-user --ro-bind / / true 2>>/tmp/bwrap-check.log; then
        echo "ci/docker: bubblewrap can start a sandbox"
    else
        echo "ci/docker: bubblewrap cannot start a sandbox here:" >&2
        cat /tmp/bwrap-check.log >&2
        return 1
    fi

    if $sudo docker info >/dev/null 2>&1; then
        echo "ci/docker: Docker daemon already running"
    else
        # overlay2 works here (kernel overlay, /var/lib on ext4); vfs where overlay can't work:
        # no overlay module, or /var/lib itself on overlayfs (nested overlay). Override with
        # CB_DOCKER_STORAGE_DRIVER.
        driver="vfs"
        if grep -qw overlay /proc/filesystems \
            && [ "$(stat -f -c %T /var/lib 2>/dev/null)" != "overlayfs" ]; then
            driver="overlay2"
        fi
        driver="${CB_DOCKER_STORAGE_DRIVER:-$driver}"
        echo "ci/docker: starting dockerd (storage driver $driver), log /tmp/dockerd.log"
        $sudo sh -c "nohup dockerd --storage-driver=$driver >/tmp/dockerd.log 2>&1 &"
        for i in $(seq 60); do
            $sudo docker info >/dev/null 2>&1 && break
            sleep 1
        done
        if ! $sudo docker info >/dev/null 2>&1; then
            echo "ci/docker: dockerd did not come up within 60 s; tail of /tmp/dockerd.log:" >&2
            tail -n 20 /tmp/dockerd.log >&2
            return 1
        fi
        echo "ci/docker: Docker daemon up after ${i}s"
    fi

    echo "ci/docker: candlebench build-image"
    (cd "$root" && $sudo "$root/.venv/bin/candlebench" build-image) || return 1
}

cb_docker_setup || { echo "ci/docker: Docker setup failed" >&2; return 1 2>/dev/null || exit 1; }
