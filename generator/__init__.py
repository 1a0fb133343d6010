"""CktGen-style spec-conditioned circuit generator (reference §4.2, cleaned per §6).

``data`` turns dataset rows into tensors, ``model`` holds the CVAE (circuit encoder, spec encoder,
GPT-like decoder, losses, greedy sampling), ``train`` fits it with checkpoints and resume, and
``predict.Generator`` is the plain inference object a serving layer wraps.
"""
