"""The clinic's local record: patients, visits, the measurements saved to a visit (with their
pictures) and an audit trail, in one SQLite file (``store``); a visit's figures (``visit``: the mean of
its measurements, dating, AC/FL, fetal weight, growth since the previous visit) and its report (``report``).

Uses ``clinical`` and ``outputs`` (reports); the web app and the command line use it.
"""
