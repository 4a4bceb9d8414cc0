"""Adapters of the payment service: Cassandra stores, the sandbox provider, in-memory fakes."""
