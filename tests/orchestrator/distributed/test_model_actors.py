"""Model actors: a tiny generator and surrogate, trained here, served from Ray actors to concurrent callers."""

import asyncio
import json

import pytest
import yaml

from circuits import Circuit, CktLoopError, FamilyConfig, generate
from generator.predict import Generator
from orchestrator.distributed.model_actors import (
    ActorResources,
    Batcher,
    GeneratorActor,
    GeneratorHost,
    SurrogateActor,
    SurrogateHost,
    start_actor,
)
from simulator.mna import MnaBackend
from surrogate.predict import Surrogate


def test_a_batcher_merges_calls_that_arrive_together_and_keeps_their_order():
    batches: list[list[int]] = []

    def square(requests: list[int]) -> list[int]:
        batches.append(list(requests))
        return [r * r for r in requests]

    async def callers() -> list[int]:
        batcher = Batcher(square, window_s=0.01)
        first = await asyncio.gather(*(batcher.submit(i) for i in range(7)))
        return [*first, await batcher.submit(9)]

    assert asyncio.run(callers()) == [0, 1, 4, 9, 16, 25, 36, 81]
    assert batches == [list(range(7)), [9]]


def test_a_batcher_fails_only_the_caller_whose_request_raises():
    calls: list[list[int]] = []

    def inverse(requests: list[int]) -> list[float]:
        calls.append(list(requests))
        return [1 / r for r in requests]

    async def callers() -> list[object]:
        batcher = Batcher(inverse, max_requests=8)
        return await asyncio.gather(*(batcher.submit(i) for i in (2, 0, 4)), return_exceptions=True)

    half, error, quarter = asyncio.run(callers())
    assert (half, quarter) == (0.5, 0.25) and isinstance(error, ZeroDivisionError)
    assert calls == [[2, 0, 4], [2], [0], [4]]  # the batch failed, then each request alone


def test_a_batcher_refuses_a_negative_window():
    with pytest.raises(ValueError, match="window"):
        Batcher(lambda r: r, window_s=-1)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    circuits = [s.circuit for s in generate(60, 5, FamilyConfig(sizings_per_topology=3))]
    rows = []
    for i, (c, perf) in enumerate(zip(circuits, MnaBackend().simulate(circuits))):
        rows.append({"id": c.key, "split": "test" if i >= 48 else "train", "circuit": c.to_dict(), **perf.to_dict()})
    path = tmp_path_factory.mktemp("actors") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def checkpoints(rows_file, tmp_path_factory):
    from generator.train import train as train_generator
    from surrogate.train import train as train_surrogate

    out = tmp_path_factory.mktemp("models")
    gen_cfg = out / "gen.yaml"
    gen_model = {"d_model": 32, "d_embed": 16, "gin_hidden": 32, "enc_layers": 1, "enc_heads": 2, "enc_ff": 64}
    gen_model |= {"latent_dim": 16, "dec_layers": 1, "dec_heads": 2, "dec_mlp_ratio": 2}
    gen_cfg.write_text(yaml.safe_dump({"epochs": 1, "batch_size": 16, "progress": False, "model": gen_model}))
    sur_cfg = out / "sur.yaml"
    sur_model = {"type_dim": 8, "pos_dim": 8, "hidden": 16, "readout_hidden": 32, "graph_dim": 16, "embed_dim": 16}
    sur_cfg.write_text(
        yaml.safe_dump({"epochs": 1, "batch_size": 16, "progress": False, "device": "cpu", "model": sur_model})
    )
    gen = train_generator(gen_cfg, rows_file, None, out / "gen")
    sur = train_surrogate(sur_cfg, rows_file, None, out / "sur")
    return gen.checkpoint, sur["checkpoint"], gen.version, sur["version"]


@pytest.mark.ray
@pytest.mark.slow
def test_actors_answer_concurrent_callers_as_the_models_answer_each_call_in_fewer_model_calls(ray_session):
    from generator.predict import DESIGN_CHECKPOINT as gen_ckpt
    from surrogate.predict import DESIGN_CHECKPOINT as sur_ckpt

    # The shipped design models; a wide window, so the calls below merge however loaded the machine is.
    generator = start_actor(GeneratorActor, gen_ckpt, ActorResources(num_cpus=0.5), batch_window_s=0.5)
    surrogate = start_actor(SurrogateActor, sur_ckpt, ActorResources(num_cpus=0.5), batch_window_s=0.5)
    try:
        model = Generator.load(gen_ckpt)
        assert ray_session.get(generator.version.remote(), timeout=120) == model.version
        surrogate_model = Surrogate.load(sur_ckpt)
        assert ray_session.get(surrogate.version.remote(), timeout=120) == surrogate_model.version
        specs = model.train_classes[:2]
        calls = [(specs, 4, seed, sampling) for seed in range(6) for sampling in ("spec", "bank")]
        together = ray_session.get([generator.generate.remote(*c) for c in calls], timeout=120)
        for proposals, (_, n, seed, sampling) in zip(together, calls):  # errors travel as their messages
            direct = model.generate(specs, n, seed=seed, sampling=sampling)
            assert len(proposals) == 8
            assert [p.key if isinstance(p, Circuit) else p for p in proposals] == [
                d.key if isinstance(d, Circuit) else str(d) for d in direct
            ]
        assert ray_session.get(generator.model_calls.remote(), timeout=60) < len(calls)
        # The same calls as one Ray call (a bandit worker's Coalescer), with a bad one: its error is its answer.
        bad_call = ([(99, 0, 0)], 1, 0, "spec")
        *merged, bad = ray_session.get(generator.generate_calls.remote([*calls, bad_call]), timeout=120)
        assert merged == together and isinstance(bad, CktLoopError)

        batches = [[s.circuit for s in generate(n, n)] for n in (3, 10, 1, 7)]
        predicted = ray_session.get([surrogate.predict.remote(b) for b in batches], timeout=120)
        assert ray_session.get(surrogate.model_calls.remote(), timeout=60) < len(batches)
        for predictions, circuits in zip(predicted, batches):
            expected = surrogate_model.predict(circuits)
            assert [p["spec_class"] for p in predictions] == [e["spec_class"] for e in expected]
            assert [p["fom"] for p in predictions] == pytest.approx([e["fom"] for e in expected], rel=1e-5)
        merged = ray_session.get(surrogate.predict_calls.remote([(b,) for b in batches]), timeout=120)
        assert [len(m) for m in merged] == [3, 10, 1, 7] and not any("embedding" in r for m in merged for r in m)
        assert [r["spec_class"] for m in merged for r in m] == [r["spec_class"] for p in predicted for r in p]
    finally:
        ray_session.kill(generator)
        ray_session.kill(surrogate)


def test_negative_resources_are_rejected():
    with pytest.raises(ValueError, match="resources"):
        ActorResources(num_cpus=-1)


@pytest.mark.slow
def test_a_bandit_worker_asks_the_generator_for_the_configured_sampling(checkpoints):
    from circuits.targets import Target
    from orchestrator.design.search import SearchConfig
    from orchestrator.distributed.bandit_worker import BanditWorker

    gen_ckpt, sur_ckpt, _, _ = checkpoints
    host = GeneratorHost(gen_ckpt)
    calls = []

    class Recording:
        def generate(self, specs, n, seed, sampling):
            calls.append(sampling)
            return host.generate(specs, n, seed, sampling)

    worker = BanditWorker(
        Recording(),
        SurrogateHost(sur_ckpt),
        host.spec_classes(),
        host.train_classes(),
        simulate=MnaBackend().simulate,
    )
    target = Target.from_expressions("t", ["gain_db>=20"])
    for sampling in ("bank", "spec"):
        calls.clear()
        outcome = worker.search(target, SearchConfig(budget=30, refine_share=0.0, family_arm=False, sampling=sampling))
        assert 0 < outcome.n_simulations <= 30 and calls and set(calls) == {sampling}
