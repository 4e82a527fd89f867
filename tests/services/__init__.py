"""Tests that need the services started by scripts/services.sh (Redis, PostgreSQL)."""
