"""The catalog's adapters: Cassandra stores, the Redis product cache, in-memory fakes."""
