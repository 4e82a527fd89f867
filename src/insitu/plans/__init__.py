"""bluesky plans and plan stubs for in-situ experiments."""
