"""The payment service: payment methods (tokens only), payments, refunds."""
