# Sourced by .ci/run: a PostgreSQL for the `postgres` deployment profile's tests. Idempotent.
# Starts the machine's PostgreSQL 15 cluster (installing postgresql when it is missing), listening
# on 127.0.0.1 only, creates the role and database `candlebench`, and exports the
# CANDLEBENCH_PG_* variables the profile's dagster.yaml and the tests read.

cb_postgres_setup() {
    local as_pg="runuser -u postgres --"
    command -v runuser >/dev/null 2>&1 || as_pg="su postgres -c"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "ci/postgres: installing postgresql"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
            || return 1
    fi
    local version cluster
    read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
    if [ -z "$version" ]; then
        echo "ci/postgres: no PostgreSQL cluster on this machine" >&2
        return 1
    fi
    # loopback only, room for the load test's 30 concurrent runs (Debian reads conf.d last)
    local conf="/etc/postgresql/$version/$cluster/conf.d/candlebench.conf"
    if [ ! -f "$conf" ]; then
        printf "listen_addresses = '127.0.0.1'\nmax_connections = 300\n" > "$conf"
        pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
    fi
    if ! pg_lsclusters --no-header | grep -q "^$version *$cluster .*online"; then
        pg_ctlcluster "$version" "$cluster" start || return 1
    fi
    local i
    for i in $(seq 1 60); do
        $as_pg psql -qAtc "select 1" >/dev/null 2>&1 && break
        sleep 1
    done
    $as_pg psql -qAtc "select 1" >/dev/null || { echo "ci/postgres: PostgreSQL does not answer" >&2; return 1; }
    $as_pg psql -qAtc "select 1 from pg_roles where rolname='candlebench'" | grep -q 1 \
        || $as_pg psql -qc "create role candlebench login createdb password 'candlebench'" || return 1
    $as_pg psql -qAtc "select 1 from pg_database where datname='candlebench'" | grep -q 1 \
        || $as_pg psql -qc "create database candlebench owner candlebench" || return 1
    export CANDLEBENCH_PG_HOST=127.0.0.1 CANDLEBENCH_PG_PORT=5432 CANDLEBENCH_PG_USER=candlebench
    export CANDLEBENCH_PG_PASSWORD=candlebench CANDLEBENCH_PG_DB=candlebench
    echo "ci/postgres: PostgreSQL $version up on 127.0.0.1:5432, database candlebench"
}

cb_postgres_setup || { echo "ci/postgres: PostgreSQL setup failed" >&2; return 1 2>/dev/null || exit 1; }
