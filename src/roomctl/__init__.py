"""roomctl: the server room of an election commission, as code."""
