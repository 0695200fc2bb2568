"""Deployment profiles: which Dagster instance candlebench runs on.

A profile is a folder `deploy/<name>/` holding the instance's `dagster.yaml`: `local` (the
repository's own dagster.yaml: SQLite storage in the home, runs in the launching process),
`postgres` (instance storage on PostgreSQL), `docker` (postgres + a container per run) and `k8s`
(the Helm chart's instance; on paper here). `CANDLEBENCH_PROFILE` selects one; `local` when unset.
A profile that needs a server names what it reads from the environment and is checked before a
run, so a wrong password is one line, not Dagster's retry loop and a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.fields import ConfigError
from pipeline.config.paths import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
PROFILE_VARIABLE = "CANDLEBENCH_PROFILE"
POSTGRES_VARIABLES = (
    "CANDLEBENCH_PG_HOST",
    "CANDLEBENCH_PG_PORT",
    "CANDLEBENCH_PG_USER",
    "CANDLEBENCH_PG_PASSWORD",
    "CANDLEBENCH_PG_DB",
)
NEEDS_POSTGRES = {"postgres", "docker", "k8s"}


@dataclass(frozen=True)
class Profile:
    name: str
    folder: Path

    @property
    def instance_yaml(self) -> Path:
        return self.folder / "dagster.yaml"

    @property
    def needs_postgres(self) -> bool:
        return self.name in NEEDS_POSTGRES


def available() -> list[str]:
    return sorted(p.parent.name for p in DEPLOY.glob("*/dagster.yaml"))


def profile(name: str | None = None) -> Profile:
    """The profile `name`, else `$CANDLEBENCH_PROFILE`, else `local`; ConfigError if unknown."""
    name = name or os.environ.get(PROFILE_VARIABLE) or "local"
    folder = DEPLOY / name
    if not (folder / "dagster.yaml").is_file():
        raise ConfigError(
            f"{PROFILE_VARIABLE}={name!r} is not a deployment profile (have: {', '.join(available())})"
        )
    return Profile(name, folder)


def postgres_settings() -> dict[str, str]:
    """The CANDLEBENCH_PG_* variables; ConfigError naming the ones that are unset."""
    missing = [v for v in POSTGRES_VARIABLES if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"the postgres profile needs {', '.join(missing)} in the environment")
    return {v.removeprefix("CANDLEBENCH_PG_").lower(): os.environ[v] for v in POSTGRES_VARIABLES}


def connect(database: str | None = None, timeout_s: int = 5):
    """A psycopg2 connection to the profile's PostgreSQL (`database`, else CANDLEBENCH_PG_DB);
    ConfigError saying why not."""
    import psycopg2  # dagster-postgres' driver

    pg = postgres_settings()
    try:
        return psycopg2.connect(
            host=pg["host"],
            port=pg["port"],
            user=pg["user"],
            password=pg["password"],
            dbname=database or pg["db"],
            connect_timeout=timeout_s,
        )
    except psycopg2.Error as err:
        said = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        raise ConfigError(
            f"PostgreSQL at {pg['host']}:{pg['port']} (database {database or pg['db']}, user {pg['user']}) "
            f"does not accept the connection: {said}"
        ) from None


def check_postgres(timeout_s: int = 5) -> str:
    """Connect once to the profile's PostgreSQL: its version, or ConfigError saying why not."""
    pg = postgres_settings()
    connection = connect(timeout_s=timeout_s)
    try:
        with connection.cursor() as cursor:
            cursor.execute("show server_version")
            version = cursor.fetchone()[0]
    finally:
        connection.close()
    return f"PostgreSQL {version} at {pg['host']}:{pg['port']}/{pg['db']}"


def check(chosen: Profile) -> str:
    """One line on the profile's readiness; ConfigError when it cannot serve a run."""
    if chosen.needs_postgres:
        return f"{chosen.name}: {check_postgres()}"
    return f"{chosen.name}: {chosen.instance_yaml.relative_to(PROJECT_ROOT)}"
