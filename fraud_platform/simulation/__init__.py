"""The traffic simulator: a deterministic world of users, merchants, payments and fraud."""
