"""Model actors: a tiny generator and surrogate, trained here, served from Ray actors."""

import json

import pytest
import yaml

from circuits import Circuit, FamilyConfig, generate
from generator.predict import Generator
from orchestrator.distributed.model_actors import ActorResources, GeneratorHost, SurrogateHost, start_actor
from simulator.mna import MnaBackend
from surrogate.predict import Surrogate

pytestmark = [pytest.mark.ray, pytest.mark.slow]


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


def test_actors_serve_batched_inference_and_report_versions(ray_session, checkpoints):
    gen_ckpt, sur_ckpt, gen_version, sur_version = checkpoints
    generator = start_actor(GeneratorHost, gen_ckpt, ActorResources(num_cpus=0.5))
    surrogate = start_actor(SurrogateHost, sur_ckpt, ActorResources(num_cpus=0.5))
    try:
        assert ray_session.get(generator.version.remote()) == gen_version
        assert ray_session.get(surrogate.version.remote()) == sur_version
        specs = [(1, 2, 1), (2, 5, 2)]
        proposals = ray_session.get(generator.generate.remote(specs, 4, 0))
        direct = Generator.load(gen_ckpt).generate(specs, 4, seed=0)
        assert len(proposals) == 8  # the actor serves what the model decodes, errors as their messages
        assert [p.key if isinstance(p, Circuit) else p for p in proposals] == [
            d.key if isinstance(d, Circuit) else str(d) for d in direct
        ]
        circuits = [s.circuit for s in generate(10, 1)]
        predictions = ray_session.get(surrogate.predict.remote(circuits))
        expected = Surrogate.load(sur_ckpt).predict(circuits)
        assert [p["spec_class"] for p in predictions] == [e["spec_class"] for e in expected]
        assert [p["fom"] for p in predictions] == pytest.approx([e["fom"] for e in expected], rel=1e-5)
    finally:
        ray_session.kill(generator)
        ray_session.kill(surrogate)


def test_negative_resources_are_rejected():
    with pytest.raises(ValueError, match="resources"):
        ActorResources(num_cpus=-1)


def test_a_bandit_worker_asks_the_generator_for_the_configured_sampling(checkpoints):
    from circuits.targets import Target
    from orchestrator.design.campaign import BanditWorker
    from orchestrator.design.search import SearchConfig

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
