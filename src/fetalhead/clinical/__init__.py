"""Clinical mathematics, with no I/O: plain functions on numbers and arrays.

``geometry`` (the head ellipse, fits, perimeter, landmarks, Dice, Hausdorff), ``biometry`` (mm from an
ellipse, gestational age, growth charts, each formula cited), ``growth`` (dating by LMP, AC/FL centiles, fetal weight), ``limits`` (every threshold, named once
with its source), ``agreement`` (Bland-Altman, ICC, within-tolerance shares).

Uses no other wing of fetalhead.
"""
