# The project's dependencies, an image of their own (candlebench/project-deps:<digest of this file,
# pyproject.toml and the base image>): rebuilt only when the dependencies change, so a code change
# rebuilds only the thin project image on top (deploy/docker/Dockerfile), in seconds.
# FROM the python:3.11-slim equivalent the project debootstraps itself (no registry). Two stages:
# the wheels the host's pip fetched into the build context (`docker build` has no index) are
# installed in the first and only the installed tree is copied out, so no layer keeps the wheels.
FROM candlebench/python:3.11-slim-bookworm AS install
COPY wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --no-compile --prefix /install \
        --find-links /tmp/wheels /tmp/wheels/*.whl

FROM candlebench/python:3.11-slim-bookworm
# git and patch (grading applies patches to checkouts) from the Debian mirror the base image names
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends git patch \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# Debian's pip puts a --prefix install under <prefix>/local (its posix_local scheme)
COPY --from=install /install/local /usr/local
ENV PYTHONDONTWRITEBYTECODE=1
CMD ["dagster", "--version"]
