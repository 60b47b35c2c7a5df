"""URLs: the grammar (spec), signatures (signing) and the URL builders (builders)."""
