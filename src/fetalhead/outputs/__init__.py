"""fetalhead.outputs."""
