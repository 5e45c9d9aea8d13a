"""Segments: condition-tree definitions compiled to SQL, static lists, membership kept current, RFM reads."""
