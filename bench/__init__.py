"""Performance harnesses: each prints its figures; none asserts on a time."""
