"""Bandit policies against TPE, uniform allocation and plain random sampling, at the same simulation budget.

Every policy searches the same targets with the same generator, surrogate and per-target budget
(simulations, refinement included); plain random sampling draws circuits of the family with no model
and no refinement. TPE is Optuna's sampler over the arm index, as the CktGen reference uses it
(multivariate, 10 start-up trials), here seeded. Runs in one process with ngspice in-process.

    .venv/bin/python benchmarks/bandit_policies.py --campaign hard.yaml --budget 500 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from circuits import Circuit
from orchestrator.design.bandit import POLICIES, Policy
from orchestrator.design.campaign import target_seed
from orchestrator.design.campaign_file import load_campaign
from orchestrator.design.search import SearchConfig, TargetSearch, family_proposer


class TPE(Policy):
    """Optuna's TPE over one categorical variable, the arm. Extra rewards for an arm (the search also
    rewards arms for verified circuits) enter as completed trials."""

    def __post_init__(self) -> None:
        import optuna

        super().__post_init__()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(multivariate=True, n_startup_trials=10, seed=self.seed)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distribution = optuna.distributions.CategoricalDistribution(list(range(self.n_arms)))
        self.pending: dict[int, object] = {}

    def select(self) -> int:
        trial = self.study.ask({"arm": self.distribution})
        arm = int(trial.params["arm"])
        self.pending[arm] = trial
        return arm

    def update(self, arm: int, reward: float) -> None:
        import optuna

        super().update(arm, reward)
        trial = self.pending.pop(arm, None)
        if trial is not None:
            self.study.tell(trial, reward)
        else:
            self.study.add_trial(
                optuna.trial.create_trial(params={"arm": arm}, distributions={"arm": self.distribution}, value=reward)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, required=True, help="campaign YAML with the targets")
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--policies", default="ucb1,thompson,uniform,tpe,random")
    parser.add_argument("--generator", help="generator checkpoint (default: the shipped design model, as campaigns)")
    parser.add_argument("--surrogate", help="surrogate checkpoint (default: the shipped design model, as campaigns)")
    parser.add_argument("--limit", type=int, help="only the first N targets")
    parser.add_argument("--sampling", choices=("bank", "spec"), default="bank", help="generator latents (as campaigns)")
    parser.add_argument("--out", type=Path, help="JSON results")
    args = parser.parse_args()

    import torch

    from generator.predict import DESIGN_CHECKPOINT as GEN
    from generator.predict import Generator
    from simulator.ngspice import NgspiceBackend
    from surrogate.predict import DESIGN_CHECKPOINT as SUR
    from surrogate.predict import Surrogate

    torch.set_num_threads(1)
    POLICIES["tpe"] = TPE
    generator = Generator.load(args.generator or GEN)
    surrogate = Surrogate.load(args.surrogate or SUR, device="cpu")
    backend = NgspiceBackend()
    targets = load_campaign(args.campaign).targets[: args.limit]

    def propose(cls, n, seed):
        return [c for c in generator.generate([cls], n, seed=seed, sampling=args.sampling) if isinstance(c, Circuit)]

    def predict(circuits):
        return [{k: v for k, v in r.items() if k != "embedding"} for r in surrogate.predict(circuits)]

    results = {}
    for name in args.policies.split(","):
        start, rows = time.perf_counter(), []
        for t in targets:
            seed = target_seed(0, t.name)
            if name == "random":
                config = SearchConfig(budget=args.budget, refine_share=0.0, seed=seed)
                search = TargetSearch(
                    t, generator.spec_classes, [], family_proposer(), None, backend.simulate, config, source="random"
                )
            else:
                config = SearchConfig(budget=args.budget, policy=name, seed=seed, sampling=args.sampling)
                search = TargetSearch(
                    t, generator.spec_classes, generator.train_classes, propose, predict, backend.simulate, config
                )
            out = search.run()
            rows.append(
                {
                    "target": t.name,
                    "met": out.met,
                    "n_simulations": out.n_simulations,
                    "first_met_at": next((n for n, f in out.history if f is not None), None),
                }
            )
        met = [r for r in rows if r["met"]]
        results[name] = {
            "targets": len(rows),
            "met": len(met),
            "met_share": len(met) / len(rows),
            "median_sims_to_first_met": sorted(r["first_met_at"] for r in met)[len(met) // 2] if met else None,
            "simulations": sum(r["n_simulations"] for r in rows),
            "seconds": round(time.perf_counter() - start, 1),
            "rows": rows,
        }
        print(
            f"{name:>9}: met {len(met)}/{len(rows)} ({len(met) / len(rows):.0%}), median simulations to the "
            f"first met circuit {results[name]['median_sims_to_first_met']}, {results[name]['seconds']} s"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
