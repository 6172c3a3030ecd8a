"""Integrations: SQLAlchemy, pandas via SQLAlchemy, Jupyter, LangChain, the MCP server and agent tools."""
