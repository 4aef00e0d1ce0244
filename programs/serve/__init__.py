"""`extes serve`: an OpenAI-compatible HTTP server for extes models, adapters and programs (see `app.create_app`)."""
