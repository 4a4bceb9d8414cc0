"""Adapters of the webhooks service: MongoDB, outbound HTTP, and in-memory fakes."""
