from edgestack.cli import app

app()
