"""The file service's event subscriptions: none. It publishes FileUploaded and FileDeleted
(through its outbox) and reacts to no other service."""
