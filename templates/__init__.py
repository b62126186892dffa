"""Built-in Jinja2 templates and the practice web app (package data)."""
