"""The call ledger: every attempt and disposition kept in PostgreSQL, the retries that follow
from outcomes, and what Redis needs back after a loss. No Lambda types in here."""
