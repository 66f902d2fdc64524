"""The directory: tenants, applications and their credentials as the token path reads them
(``snapshot``), the one writer that enforces every rule (``admin``), signing keys (``signing``),
client-secret hashing (``secrets``) and the log of refused requests (``refusals``)."""
