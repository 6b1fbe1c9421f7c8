"""Use cases shared by the SDK, the CLI, the HTTP admin routes and the dashboard."""
