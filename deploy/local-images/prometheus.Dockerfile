# Prometheus from Debian's package on a local Debian base: the compose test's stand-in for
# prom/prometheus, which cannot be pulled here. Same entry point and paths as that image, and wget
# for docker-compose.yml's health check.
ARG BASE_IMAGE=crisismon-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && install --directory --owner nobody /prometheus
USER nobody
ENTRYPOINT ["/usr/bin/prometheus"]
