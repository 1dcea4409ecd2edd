"""The hospital hand-off of one measurement: DICOM SR with its overlay capture, and FHIR."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_hand_off"]


def write_hand_off(m, scan, model, sr_dir=None, fhir_dir=None, fhir_bundle_type: str = "collection") -> list[Path]:
    """The hospital hand-off of a measurement: DICOM SR and overlay capture into ``sr_dir`` (ultrasound
    DICOM sources with mm figures), a FHIR R4 Bundle into ``fhir_dir`` (any scan with mm figures).
    What cannot be written is said in the result (a message, and the flag ``sr_not_written`` or
    ``fhir_not_written``), never an error that ends a batch."""
    written = []
    if m.status == "failed" or m.head_circumference_mm is None:
        if sr_dir or fhir_dir:
            m.messages.append("no SR or FHIR: nothing measured in mm")
        return written
    sha = (getattr(model, "metadata", None) or {}).get("sha256", "")
    if sr_dir:
        from .sr import write_hospital_dicom

        if scan.dicom is None:
            m.messages.append("no DICOM SR: the source is not a DICOM file (no study to add it to)")
        else:
            try:
                written += write_hospital_dicom(m, scan, sr_dir, model_version=model.version, model_sha256=sha)
            except (OSError, RuntimeError, ValueError, AttributeError) as exc:
                m.flags.append("sr_not_written")
                m.messages.append(f"DICOM SR not written to {sr_dir} ({exc})")
    if fhir_dir:
        from .fhir import study_effective, write_fhir

        header = getattr(getattr(scan, "dicom", None), "header", None)
        try:
            written.append(write_fhir(m, fhir_dir, model_version=model.version, model_sha256=sha,
                                      bundle_type=fhir_bundle_type,
                                      effective=study_effective(header) if header is not None else None))
        except (OSError, ValueError) as exc:
            m.flags.append("fhir_not_written")
            m.messages.append(f"FHIR Bundle not written to {fhir_dir} ({exc})")
    return written
