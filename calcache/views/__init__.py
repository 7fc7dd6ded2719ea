"""calcache's views: thin wrappers that parse, call a service or selector, and render."""
