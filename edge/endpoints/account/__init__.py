"""Accounts for people: the sign-up, login and account pages (/signup, /login, /logout, /account), and the
JWTs the accounts service issues (POST /v1/auth/token, /v1/auth/refresh)."""
