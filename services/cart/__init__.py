"""The cart service: one cart per signed-in user, on Redis."""
