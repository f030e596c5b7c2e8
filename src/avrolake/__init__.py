"""avrolake: evolving Avro from Kafka into Delta."""
