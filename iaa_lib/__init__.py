"""Image aesthetic assessment library."""
