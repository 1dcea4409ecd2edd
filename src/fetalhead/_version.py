"""The version of fetalhead (one place: the package, its reports, SR, FHIR and model cards read it here)."""

__version__ = "0.3.0"
#: How every output names the software that measured (reports, overlays, SR, FHIR, the page).
SOFTWARE_NAME = f"fetalhead {__version__}"
