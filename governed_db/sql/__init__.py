"""SQL analysis: statements parsed in the connection's exact dialect (sqlglot), and the facts rules read."""
