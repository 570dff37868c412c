"""Importing external transaction files into the raw contract."""
