"""The cart service's adapters: Redis, the catalog over gRPC, the user service's JWKS, fakes."""
