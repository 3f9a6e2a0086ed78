"""binhyen's domain logic: plain Python with explicit state, no Kafka or ClickHouse."""
