"""Studies of many labelled scans: what the researchers and the validation kit run.

``validation`` (a clinic's own agreement study), ``evaluation`` (errors of an ellipse against its
reference), ``datacheck`` (checks of a labelled data set), ``calibration`` (fitting the 90 %
intervals and the review flag), ``variations`` (the named damages every benchmark applies).

May use: the wings below it and ``measurement``.
"""
