"""The user service: accounts, credentials, access tokens and their keys, profiles, settings."""
