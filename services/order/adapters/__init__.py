"""The order service's adapters: Cassandra, in-memory fakes and gRPC clients of other services."""
