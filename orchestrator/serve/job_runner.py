"""Design jobs behind Serve: one ``JobRunner`` replica holds ``DesignJobs`` and its runner, so jobs go on
while the ingress scales; ``HandleJobs`` gives the routes its calls through a deployment handle.

The replica starts the runner in its constructor: a replica started after a crash, or a service started
again on the same store, resumes the unfinished jobs. Serve calls ``__del__`` when it shuts the replica
down; the runs stop and their jobs stay ``running`` until the next start requeues them.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.exceptions import RayTaskError

from circuits import CktLoopError
from orchestrator.serve.jobs import LocalJobs, design_jobs


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64, health_check_period_s=10)
class JobRunner(LocalJobs):
    """The service's one design-job runner (``config``: a ``ServeConfig`` as a mapping); its calls are
    ``LocalJobs``'."""

    def __init__(self, config: dict[str, Any]) -> None:
        from orchestrator.serve.config import ServeConfig

        super().__init__(design_jobs(ServeConfig.model_validate(config)))
        self.jobs.start()

    def check_health(self) -> None:
        if not self.jobs.alive():
            raise RuntimeError("the design-job runner thread has stopped")

    def __del__(self) -> None:
        jobs = getattr(self, "jobs", None)
        if jobs is not None:
            jobs.stop(timeout_s=10)
            jobs.store.close()


class HandleJobs:
    """The routes' job calls over a ``JobRunner`` handle; a refusal raised in the replica (404, 409, 422,
    429) is raised here as itself, not as Ray's wrapper with a traceback."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self.handle, method).remote(*args)
        except RayTaskError as exc:
            if isinstance(exc.cause, CktLoopError):
                raise exc.cause from None
            raise

    async def submit(self, request: dict[str, Any]) -> int:
        return await self._call("submit", request)

    async def list(self) -> list[dict[str, Any]]:
        return await self._call("list")

    async def status(self, job_id: int) -> dict[str, Any]:
        return await self._call("status", job_id)

    async def cancel(self, job_id: int) -> dict[str, Any]:
        return await self._call("cancel", job_id)

    async def report(self, job_id: int) -> str:
        return await self._call("report", job_id)
