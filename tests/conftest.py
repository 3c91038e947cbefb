pytest_plugins = ["tests.kafka_fixtures", "tests.compose_fixtures"]
