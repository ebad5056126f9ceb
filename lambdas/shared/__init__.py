"""Code both functions use; bundled into each function's package."""
