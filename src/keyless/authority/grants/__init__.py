"""Grant types of the token endpoint (client_credentials)."""
