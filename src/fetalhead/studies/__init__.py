"""fetalhead.studies."""
