"""The webhooks service: signed, retried, logged deliveries of public events (issue 13)."""
