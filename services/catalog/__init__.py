"""The catalog service: products, categories, stock and reservations, reviews, the read cache."""
