"""Ray at the edges and the jobs that drive the models and the simulator.

- ``cli``: the ``cktloop`` command line (parser, validation, one command module per area).
- ``distributed``: Ray itself (runtime, simulation pool, model actors, bandit workers, Tune).
- ``design``: the design algorithms and the campaign driver (bandits, search, refinement, campaign files, export).
- ``datasets``: building SPICE-labelled datasets and their statistics.
- ``reporting``: the campaign's HTML report and topology drawings.
- ``serve``: the Ray Serve endpoint (HTTP app, deployments, design jobs, the web page).
"""
