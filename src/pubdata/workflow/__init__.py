"""The sharing workflow: requests, decisions, objections and their working-day deadlines."""
