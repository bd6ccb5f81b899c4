"""`avatar batch`: many fit and render jobs from a jobs file, on a local process pool or a Ray cluster."""
