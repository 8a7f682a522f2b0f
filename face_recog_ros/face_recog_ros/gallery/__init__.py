"""The enrolled people: the in-memory model (`model`) and the file that keeps it (`store`)."""
