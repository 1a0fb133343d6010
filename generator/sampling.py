"""The generator's sampling choices, named once (``generator.predict.Generator.generate`` takes them).

Free of torch, so the CLI's parser and the design search import them without loading a model.
"""

SAMPLING = ("bank", "spec")  # latents around training circuits of the class (bank), or the paper's spec latent
BANK_VALUES = ("clean", "noisy")  # bank sampling reads device values from the unperturbed or the perturbed latent
