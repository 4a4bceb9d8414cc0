"""Adapters of the file service: MongoDB metadata, S3 object storage, in-memory fakes."""
