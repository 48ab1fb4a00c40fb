"""Dead-letter service: stores every rejected event, with the reason, in the table."""
