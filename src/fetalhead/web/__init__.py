"""The web app (FastAPI) and its page: ``fetalhead serve``."""
