"""The package version, in the base so that the core can key its cache on it without importing a face."""
__version__ = "0.2.0"
