"""Trust as code: a YAML or JSON document describing tenants and applications. ``schema`` holds
the document's types and accepted keys, ``read`` parses a file with line-numbered problems,
``write`` serializes the store back, ``wire`` carries documents over the admin API, and
``reconcile`` plans and applies a document against the store."""
