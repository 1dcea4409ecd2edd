"""What a measurement becomes for a person or a file.

``results`` (CSV rows, JSON, resumable result files), ``report`` (HTML and PDF reports in three
languages, growth charts), ``overlay`` (the ellipse and calipers drawn on the scan), ``display``
(rounding and wording shared by page and report).

May use: ``assets``, ``clinical``, ``scans``, ``model``.
"""
