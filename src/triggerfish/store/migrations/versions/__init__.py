"""The revisions of the store's schema, one module each, named by number."""
