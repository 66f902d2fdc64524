"""``keyless dev``: the whole system on one machine, and the demo service it protects."""
