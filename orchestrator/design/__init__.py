"""Design algorithms and the campaign driver: bandit policies, per-target search, NSGA-II refinement,
campaign files and the per-target export. Plain Python; Ray arrives through ``orchestrator.distributed``."""
