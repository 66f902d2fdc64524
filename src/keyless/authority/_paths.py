"""Names of the files the authority keeps in its data directory (light: the CLI imports it)."""

ADMIN_KEY_FILE = "admin.key"
URL_FILE = "url"  # the base URL of the server last started on this data directory

__all__ = ["ADMIN_KEY_FILE", "URL_FILE"]
