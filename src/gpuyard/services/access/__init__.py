"""Who may get in: operators' control of API keys and accounts (``operators``), and the SSH keys
that log into instances (``ssh_keys``)."""
