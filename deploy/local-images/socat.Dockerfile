# socat from Debian's package on a local Debian base: the compose test's stand-in for alpine/socat
# (the dashboard's proxy), which cannot be pulled here. Same entry point as that image.
ARG BASE_IMAGE=crisismon-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends socat \
    && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["socat"]
