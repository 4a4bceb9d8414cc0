"""Adapters of the notification service: MongoDB, SMTP, SMS sandbox, and in-memory fakes."""
