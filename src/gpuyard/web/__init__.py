"""The web console: server-rendered pages (Jinja2) and a little plain JavaScript, on the same
services as the API (docs/console.md)."""
