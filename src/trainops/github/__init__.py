"""GitHub reporting: REST client, markdown rendering of plans and outcomes."""
