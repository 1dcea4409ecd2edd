"""fetalhead.model.runtime."""
