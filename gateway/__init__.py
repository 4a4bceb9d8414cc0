"""The Emporium gateway: Envoy configuration rendered from services.yaml."""
