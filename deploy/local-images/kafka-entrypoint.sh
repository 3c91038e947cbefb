#!/bin/sh
# Runs Kafka configured as apache/kafka's image is: every KAFKA_<NAME> variable is the property
# <name> (lower case; "_" is ".", "__" is "_", "___" is "-"), and CLUSTER_ID formats empty storage.
set -eu
config=/opt/kafka/config/server.properties
env | sort | while IFS= read -r variable; do
    name=${variable%%=*} value=${variable#*=}  # values may hold "=" (base64), even at the end
    case "$name" in
        KAFKA_HEAP_OPTS | KAFKA_OPTS) ;;
        KAFKA_*)
            key=$(printf '%s' "${name#KAFKA_}" | tr 'A-Z' 'a-z' \
                | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
            printf '%s=%s\n' "$key" "$value" ;;
    esac
done > "$config"

# Kafka 4 logs through log4j2, 3.x through log4j 1's API: the jars say which this is.
if ls /opt/kafka/libs/log4j-core-*.jar > /dev/null 2>&1; then
    logging=-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties
else
    logging=-Dlog4j.configuration=file:/opt/kafka/config/log4j.properties
fi
set -f  # from here on, the classpath's * is Java's to expand, not the shell's
java="java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} ${KAFKA_OPTS:-} $logging -cp /opt/kafka/libs/*"

# Format once: the storage outlives the container in its volume.
$java kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$config"
exec $java kafka.Kafka "$config"
