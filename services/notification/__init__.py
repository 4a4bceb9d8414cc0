"""The notification service: email, SMS, push and in-app messages from domain events."""
