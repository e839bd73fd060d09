"""The routers of the HTTP server, one module per resource."""
