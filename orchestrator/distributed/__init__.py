"""Ray at the edges: starting or joining Ray, the simulation pool, model actors, bandit workers and Tune.

Everything here wraps plain classes from the other packages, so the wrapped logic is testable without Ray.
"""
