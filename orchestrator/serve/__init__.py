"""CktLoop as a service: Ray Serve deployments and a FastAPI app over the plain model classes (docs/serve.md)."""
