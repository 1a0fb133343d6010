"""Ray at the edges: actor pools, campaigns and the ``cktloop`` command line."""
