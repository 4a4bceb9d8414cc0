"""The Emporium services: one package each, with the same module names in every one."""
