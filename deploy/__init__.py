"""Deployment files (Helm chart, Compose) generated from the service list."""
