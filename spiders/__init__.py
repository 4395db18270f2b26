"""Bundled demo site and example spider projects for crawlfleet."""
