"""HTTP adapters: thin route modules per API family over the shared services."""
