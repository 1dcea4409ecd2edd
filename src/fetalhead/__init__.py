"""fetalhead: fetal head biometry (HC, BPD, OFD, cephalic index) on 2D ultrasound."""

__version__ = "0.1.0"
