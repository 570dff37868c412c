"""Backups, restores and replays: what recovery from a lost service or bad data runs."""
