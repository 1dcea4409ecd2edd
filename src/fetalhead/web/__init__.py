"""The web app (FastAPI) and its page: ``fetalhead serve``.

``app`` (the application and its static page), ``api`` (the router), ``serving`` (limits, guards).

May use: every wing below it; not ``cli``.
"""
