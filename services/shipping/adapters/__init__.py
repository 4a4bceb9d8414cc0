"""Adapters of the shipping service: Cassandra, in-memory fakes, the simulated carrier."""
