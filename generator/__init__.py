"""CktGen-style spec-conditioned circuit generator (reference §4.2, cleaned per §6).

``data`` turns dataset rows into tensors; ``config`` holds every knob; ``model`` the CVAE (circuit
encoder, spec encoder, GPT-like decoder) built from ``layers``; ``losses`` its loss terms; ``decoding``
turns latents into circuits (greedy or drawn, grammar-constrained by ``grammar``); ``sampling`` names the
ways to draw latents; ``train`` fits it on the shared loop (``surrogate.training``); and
``predict.Generator`` is the plain inference object a serving layer wraps.
"""
