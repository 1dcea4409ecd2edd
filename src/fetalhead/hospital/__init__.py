"""Hand-off to the hospital's systems.

``sr`` (DICOM Structured Report, TID 5000, and the overlay's secondary capture), ``fhir`` (FHIR R4
Bundles), ``handoff`` (both for one measurement), ``node`` (a DICOM node that receives scans from a
scanner and stores results to a PACS).

May use: the wings below it and ``measurement``.
"""
