"""fetalhead.clinical."""
