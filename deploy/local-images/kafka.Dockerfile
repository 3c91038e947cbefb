# Apache Kafka from the Maven Central jars (devtools/broker.py resolves them, as for the local broker),
# on a local Debian base: the compose test's stand-in for apache/kafka, which cannot be pulled here.
# It reads the same KAFKA_* and CLUSTER_ID variables as apache/kafka (docker-compose.yml's), and has
# the one script of the Kafka tarball that the compose file uses, its health check's.
#
# Built by devtools/compose_stack.py from a context it assembles: libs/ (the jars), the broker's
# log4j files (deploy/broker/) and this folder's scripts.
ARG BASE_IMAGE=crisismon-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
COPY libs/ /opt/kafka/libs/
COPY log4j.properties log4j2.properties /opt/kafka/config/
COPY kafka-entrypoint.sh /opt/kafka/entrypoint.sh
COPY kafka-broker-api-versions.sh /opt/kafka/bin/kafka-broker-api-versions.sh
ENTRYPOINT ["/opt/kafka/entrypoint.sh"]
