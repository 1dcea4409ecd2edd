"""fetalhead: fetal head biometry (HC, BPD, OFD, cephalic index) on 2D ultrasound.

>>> import fetalhead
>>> m = fetalhead.measure("scan.png", pixel_spacing_mm=0.135)   # doctest: +SKIP
>>> m.head_circumference_mm, m.status                            # doctest: +SKIP
"""

import os as _os

__version__ = "0.3.0"

# Nothing leaves the machine: ONNX Runtime's own telemetry (a device id under ~/.cache/Microsoft
# and an event queue for an outside host) is switched off before anything can import it.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from .clinical.geometry import Ellipse  # noqa: E402


def measure(image, pixel_spacing_mm=None, **kwargs):
    """Measure the fetal head on one scan; see :func:`fetalhead.measurement.measure`."""
    from .measurement import measure as _measure

    return _measure(image, pixel_spacing_mm, **kwargs)


__all__ = ["Ellipse", "measure", "__version__"]
