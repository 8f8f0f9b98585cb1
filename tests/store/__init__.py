"""Store and leader-lease tests, on SQLite and on a real throwaway Postgres."""
