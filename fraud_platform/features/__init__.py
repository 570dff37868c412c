"""Features: the catalog (declared once) and the engines generated from it."""
