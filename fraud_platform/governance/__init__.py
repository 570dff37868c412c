"""Governance: how long data is kept (retention and the S3 lifecycle), who may read it, what
was done to it (the audit log), and how a user is forgotten."""
