"""The five screens of the app, one per mode (each with its .tcss beside it)."""
