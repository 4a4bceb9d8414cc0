"""The user service's event subscriptions: none. It owns accounts and reacts to no other service."""
