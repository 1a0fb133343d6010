"""The designer's web page of the serve app and the figures it shows."""
