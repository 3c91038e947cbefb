"""Development tooling, not part of the running service: the local Kafka broker that `make
run`, `crisismon broker` and the tests start from Maven Central jars."""
