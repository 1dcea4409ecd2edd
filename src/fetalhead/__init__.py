"""fetalhead: fetal head biometry (HC, BPD, OFD, cephalic index) on 2D ultrasound.

>>> import fetalhead
>>> m = fetalhead.measure("scan.png", pixel_spacing_mm=0.135)   # doctest: +SKIP
>>> m.head_circumference_mm, m.status                            # doctest: +SKIP

The package is built in wings, each a subpackage that may import only the wings *below* it
(:data:`LAYERS`, lowest first; ``tests/test_layout.py`` reads every import and fails on an
upward one or a cycle):

==============  =================================================================================
``assets``      translations and fonts (data only)
``clinical``    clinical mathematics, no I/O: ellipse geometry, biometry formulas and growth
                charts, named limits, agreement statistics
``scans``       reading scans: image files, DICOM and its calibration, cine loops, data sets
``model``       the segmentation network at run time: views (transforms), the measuring
                pipeline, the ONNX runtime and its weights, uncertainty, training-time damage
                (augment), INT8 quantization
``outputs``     what a result becomes: result rows and JSON, reports (HTML, PDF), overlays
``measurement`` the one way in: decides input type, pixel spacing, status and result
``hospital``    hand-off to the hospital: DICOM SR and capture, FHIR, the DICOM node
``records``     the clinic's local record: patients, visits, saved measurements and pictures,
                audit (SQLite); a visit's figures, growth and report
``studies``     studies of many scans: validation kit, evaluation, data check, calibration,
                named variations (damages)
``training``    training, network definition, export (extra ``train``)
``batch``       many files: serial, processes, Dask; resume
``web``         the web app and its page (extra ``web``)
``cli``         the command line
==============  =================================================================================
"""

import os as _os

from ._version import __version__

#: The wings and top modules, lowest first: a module may import its own wing and those before it.
LAYERS = ("_version", "assets", "clinical", "scans", "model", "outputs", "measurement", "hospital", "records", "studies",
          "training", "batch", "web", "cli")

# Nothing leaves the machine: ONNX Runtime's own telemetry (a device id under ~/.cache/Microsoft
# and an event queue for an outside host) is switched off before anything can import it.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from .clinical.geometry import Ellipse  # noqa: E402


def measure(image, pixel_spacing_mm=None, **kwargs):
    """Measure the fetal head on one scan; see :func:`fetalhead.measurement.measure`."""
    from .measurement import measure as _measure

    return _measure(image, pixel_spacing_mm, **kwargs)


__all__ = ["Ellipse", "measure", "__version__", "LAYERS"]
