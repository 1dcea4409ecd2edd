"""Reading scans: everything that turns a file or bytes into a grey image and what came with it.

``imageio`` (PNG/JPEG/BMP/TIFF, sniffing, sizes checked before decoding), ``dicom`` (ultrasound DICOM
and its region calibration), ``cine`` (multi-frame DICOM and video loops), ``scan`` (the decoded
:class:`~fetalhead.scans.scan.Scan`), ``files`` (the scans in the folders a user names), ``datasets``
(labelled data sets: HC18 and landmark CSVs, subject-grouped splits and folds).

May use: ``clinical``.
"""
