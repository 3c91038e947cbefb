#!/bin/sh
# The Kafka tarball's bin/kafka-broker-api-versions.sh (what docker-compose.yml's health check runs),
# for the jars that Maven gives: the class is in kafka_2.13 on 3.x, in kafka-tools on 4.x (which
# deploy/broker/pom.xml does not fetch yet: add it there when docker-compose.yml moves to Kafka 4).
set -eu
class=kafka.admin.BrokerApiVersionsCommand
if ls /opt/kafka/libs/kafka-tools-[0-9]*.jar > /dev/null 2>&1; then
    class=org.apache.kafka.tools.BrokerApiVersionsCommand
fi
exec java -Xmx128m -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties \
    -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp '/opt/kafka/libs/*' "$class" "$@"
