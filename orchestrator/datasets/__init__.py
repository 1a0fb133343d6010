"""SPICE-labelled datasets: building them (resumable) and their statistics beside OCB-101's."""
