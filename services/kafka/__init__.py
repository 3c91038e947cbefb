"""The Kafka adapters: topics, the Faust worker, the alert subscriber, the local broker."""
