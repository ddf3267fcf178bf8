"""The review pages (server-rendered HTML): login, status, flagged parts, part detail, statistics."""
