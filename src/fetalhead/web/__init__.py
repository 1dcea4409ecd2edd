"""The web app (FastAPI) and its page: ``fetalhead serve``.

``app`` (the application and its static page), ``api`` (the router), ``visits`` (the visit record's
router), ``serving`` (limits, guards), ``signing`` (what this server issued).

May use: every wing below it; not ``cli``.
"""
