"""Reading mail: parsing a message, the directive grammar, and the context the rules look at."""
