"""Getting into a running instance without SSH: the execute call (a few file commands run in
the container) and Jupyter (its token and address)."""
