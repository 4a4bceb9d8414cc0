"""The Emporium service kit: the only Python shared between services."""
