"""Service functions shared by every caller: both HTTP API families, the CLI and the scheduler."""
