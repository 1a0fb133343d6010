"""The model infrastructure both models use: the surrogate (``surrogate.train``) and the generator
(``generator.train``) train on it; it lives here because ``generator`` already depends on ``surrogate``.

* ``settings``: ``TrainSettings``, the one vocabulary of training knobs (optimiser, schedule, ``lr_drops``,
  checkpointing, ``threads``, ``device``), and the config diff that decides whether a run may resume;
* ``loop``: the training loop with resume (``Run``), the metrics log and its plot after each checkpoint;
* ``checkpoints``: atomic writes, reads checked against a ``format`` marker, RNG states, shipping;
* ``metrics``: the JSONL metrics log and its PNG plot;
* ``device``: ``auto|cpu|cuda`` and torch's CPU threads.
"""
