"""Where the expensive work runs: how many sandboxes at once inside a partition, and which
Docker daemon they run on."""

from __future__ import annotations

from pipeline.config.fields import ConfigError, _optional


def sandbox_workers(raw: dict, where: str) -> int:
    """`sandbox_workers`, or its former name `grading_workers`; both only when they agree."""
    new = _optional(raw, "sandbox_workers", int, where, None, minimum=1)
    old = _optional(raw, "grading_workers", int, where, None, minimum=1)
    if new is not None and old is not None and new != old:
        raise ConfigError(
            f"{where}: fields 'sandbox_workers' ({new}) and 'grading_workers' ({old}) disagree; "
            "'grading_workers' is the former name of 'sandbox_workers': keep one"
        )
    return new or old or 2


DOCKER_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")


def docker_host(raw: dict, where: str) -> str | None:
    value = _optional(raw, "docker_host", str, where, None)
    if value is not None and not value.startswith(DOCKER_SCHEMES):
        raise ConfigError(
            f"{where}: field 'docker_host' must be a Docker address ({', '.join(DOCKER_SCHEMES)}...), "
            f"got {value!r}"
        )
    return value
