"""Enrichment step of the pipe: dial tasks in, dialable tasks with their campaign's config out."""
