"""CLI command groups, one module per noun; each parses, calls one entry function and prints."""
