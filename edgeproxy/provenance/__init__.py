"""C2PA Content Credentials: read an original's, sign a derivative's."""
