"""Pipeline stages: pure functions, data frames in, data frames out, no disk."""
