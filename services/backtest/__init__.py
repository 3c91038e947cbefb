"""The offline engine: event files through the pure core, no Kafka."""
