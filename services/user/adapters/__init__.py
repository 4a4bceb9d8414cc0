"""The user service's adapters: storage and key material behind the ports of `ports.py`."""
