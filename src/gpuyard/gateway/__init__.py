"""The SSH gateway (docs/access.md): asyncssh serving each instance on its own port, with
sessions, SFTP and port forwarding through the Docker Engine API."""
