"""The accounts service: users, API keys, JWT verification, prices and the credits ledger."""
