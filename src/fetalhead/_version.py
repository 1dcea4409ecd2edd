"""The version of fetalhead (one place: the package, its reports, SR, FHIR and model cards read it here)."""

__version__ = "0.3.0"
