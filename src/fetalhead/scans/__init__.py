"""fetalhead.scans."""
