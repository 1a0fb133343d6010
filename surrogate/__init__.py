"""The learned surrogate: CktGen's DIGIN evaluator (spec classes, FoM) plus a spec regressor.

``surrogate.predict.Surrogate`` is the predictor; ``surrogate.train.train`` trains one from a dataset;
``surrogate.evaluate.evaluate`` scores a checkpoint on the held-out split. ``surrogate.training`` is the
training infrastructure (loop, checkpoints, device, knobs) both the surrogate and the generator use.
"""
