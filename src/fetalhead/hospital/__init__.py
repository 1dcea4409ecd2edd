"""fetalhead.hospital."""
