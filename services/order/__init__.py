"""The order service: orders, their line items and totals, and the checkout state machine."""
